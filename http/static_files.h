#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "http/router.h"

namespace hawker::http {

/// A file compiled into the binary by scripts/embed.py from web/static/.
struct EmbeddedFile {
  /// URL path relative to the static root, with a leading '/': "/index.html".
  std::string_view path;
  std::string_view content_type;
  std::string_view bytes;
  /// Pre-compressed gzip copy; empty when the type is not text or gzip did not shrink it.
  std::string_view gzipped;
  /// Strong validators (quoted), one per representation: identity and gzip.
  std::string_view etag;
  std::string_view etag_gzip;
};

/// Every embedded file, sorted by path. Defined by the source generated at build time, which
/// links in through web_dep (web/meson.build).
std::span<const EmbeddedFile> embedded_files();

/// The embedded file at `path` ("/index.html"), or null.
const EmbeddedFile* find_embedded(std::string_view path);

struct StaticOptions {
  /// Name of the route's wildcard parameter holding the file path.
  std::string param = "path";
  /// Served for an empty path or one ending in '/'.
  std::string index = "index.html";
  /// Embedded files change only with the binary; clients revalidate with the ETag.
  std::string cache_control = "no-cache";
};

/// A handler for a route such as "/{path*}": serves embedded files with ETag/If-None-Match
/// (304), Cache-Control and the pre-compressed gzip copy when the client accepts it.
Handler static_handler(StaticOptions options = {});

/// Whether an If-None-Match value names `etag` (weak comparison, RFC 9110 section 13.1.2).
bool etag_matches(std::string_view if_none_match, std::string_view etag);

}  // namespace hawker::http
