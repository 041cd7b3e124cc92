#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hawker::http {

/// Header fields in arrival order; names compare case-insensitively (RFC 9110 section 5.1).
class Headers {
 public:
  void add(std::string name, std::string value) {
    // Requests carry a handful of fields: one allocation for them instead of one per doubling.
    if (fields_.empty()) fields_.reserve(8);
    fields_.emplace_back(std::move(name), std::move(value));
  }
  /// Replaces every field of that name with one.
  void set(std::string name, std::string value);
  void remove(std::string_view name);
  /// The first value of `name`.
  std::optional<std::string_view> get(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }
  bool empty() const { return fields_.empty(); }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

bool iequals(std::string_view a, std::string_view b);

/// Decodes %XX escapes; with `plus_as_space` also '+' (the form encoding of query strings).
/// Malformed escapes are kept literally. Returns nullopt when the result would hold a NUL byte.
std::optional<std::string> percent_decode(std::string_view in, bool plus_as_space);

/// The value of `name` in a raw query string ("a=1&b=x+y"), decoded; nullopt if absent.
/// A bare key ("?flag") yields an empty string.
std::optional<std::string> query_value(std::string_view raw_query, std::string_view name);

/// One parsed HTTP request as the handler sees it.
struct Request {
  std::string method;
  /// The request target as sent ("/a%20b?x=1").
  std::string target;
  /// Path before '?', still percent-encoded; the router matches on its segments.
  std::string raw_path;
  /// Path, percent-decoded.
  std::string path;
  /// Everything after '?', undecoded.
  std::string raw_query;
  Headers headers;
  std::string body;
  int version_major = 1;
  int version_minor = 1;
  /// Whether the client allows the connection to stay open after this request.
  bool keep_alive = true;
  /// Path parameters from the matched route ({id} -> value), decoded.
  std::vector<std::pair<std::string, std::string>> params;
  /// The matched route's pattern ("/api/products/{id}"), or empty when none matched.
  std::string route;
  std::string remote;
  uint64_t connection_id = 0;

  std::optional<std::string> query(std::string_view name) const {
    return query_value(raw_query, name);
  }
  std::optional<std::string_view> header(std::string_view name) const { return headers.get(name); }
  /// The path parameter `name`, or empty when the route has no such parameter.
  std::string_view param(std::string_view name) const;
};

}  // namespace hawker::http
