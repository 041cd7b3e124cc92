#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"

namespace hawker {

/// A secret value (stream key, password, token). Formatting it prints a placeholder, so a
/// secret passed to a log line by mistake never reaches the log.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }

 private:
  std::string value_;
};

/// `bytes` random bytes from OpenSSL's CSPRNG.
Result<std::string> random_bytes(size_t bytes);

/// A URL-safe token: `prefix` followed by base64url (no padding) of `bytes` random bytes.
Result<Secret> random_token(std::string_view prefix, size_t bytes = 24);

/// Like random_token, with 12 lower-case hex digits of `now_ms` between the prefix and the
/// random part, so tokens made later sort after earlier ones. As keys of a B-tree index they
/// land next to each other instead of on a random page each; they are exactly as hard to guess.
Result<Secret> time_ordered_token(std::string_view prefix, int64_t now_ms, size_t bytes = 24);

/// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

/// Raw HMAC-SHA256 of `data` under `key`.
std::string hmac_sha256(std::string_view key, std::string_view data);

std::string base64_encode(std::string_view data);
std::string base64url_encode(std::string_view data);
Result<std::string> base64_decode(std::string_view text);
std::string hex_encode(std::string_view data);

/// Compares in time that depends only on the lengths, never on where the bytes differ.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace hawker

template <>
struct fmt::formatter<hawker::Secret> : fmt::formatter<std::string_view> {
  template <typename Ctx>
  auto format(const hawker::Secret&, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format("[redacted]", ctx);
  }
};
