#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace hawker::http {

/// gzip (RFC 1952) of `data` with zlib; nullopt only if zlib fails.
std::optional<std::string> gzip_compress(std::string_view data, int level = 6);

/// Inflates a gzip stream; nullopt when it is corrupt or would exceed `max_output` bytes.
std::optional<std::string> gzip_decompress(std::string_view data, size_t max_output);

/// Whether an Accept-Encoding value accepts gzip (RFC 9110 section 12.5.3: "gzip", "x-gzip" or
/// "*", unless given q=0).
bool accepts_gzip(std::string_view accept_encoding);

}  // namespace hawker::http
