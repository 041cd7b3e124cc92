#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/sealed_bytes.h"
#include "http/request.h"

namespace hawker::http {

/// Immutable bytes shared by many responses (media parts, segments): sent without copies.
using SharedBytes = std::shared_ptr<const std::vector<uint8_t>>;
/// Immutable text shared by many responses (a rendered playlist).
using SharedText = std::shared_ptr<const std::string>;
/// Bytes that outlive the server (files embedded in the binary): sent without copies.
struct StaticBody {
  std::string_view bytes;
};

/// An HTTP response. The server adds Date, Content-Length, Connection, CORS and Vary headers and
/// compresses text bodies, so handlers set only what is theirs to say.
struct Response {
  int status = 200;
  Headers headers;
  /// A SharedSealedBytes body with a memfd is sent with sendfile(2), without a copy.
  std::variant<std::string, SharedBytes, SharedText, StaticBody, SharedSealedBytes> body;

  /// The body's bytes, whatever holds them.
  std::string_view body_view() const;
  size_t body_size() const { return body_view().size(); }

  /// `application/json` with the serialised value.
  static Response json(int status, const nlohmann::json& value);
  static Response text(int status, std::string body,
                       std::string content_type = "text/plain; charset=utf-8");
  static Response bytes(int status, SharedBytes body, std::string content_type);
  static Response sealed(int status, SharedSealedBytes body, std::string content_type);
  static Response shared_text(int status, SharedText body, std::string content_type);
  /// A status with no body.
  static Response empty(int status);

  /// RFC 9457 `application/problem+json`. `slug` names the problem: the `type` member is the
  /// relative reference "/problems/<slug>" (for example "/problems/not-found"), stable across
  /// releases so clients may branch on it; `title` is the same for every occurrence of the
  /// problem, `detail` describes this one.
  static Response problem(int status, std::string_view slug, std::string_view title,
                          std::string_view detail);
};

/// "OK", "Not Found", ...; "Unknown" for codes hawker never sends.
const char* reason_phrase(int status);

/// Whether a Content-Type names text that gzip shrinks (text/*, JSON, playlists, JS, CSS, SVG).
bool is_compressible(std::string_view content_type);

}  // namespace hawker::http
