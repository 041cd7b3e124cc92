#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/result.h"
#include "http/exchange.h"
#include "http/request.h"

namespace hawker::http {

/// Answers one request, now or later, through the Exchange.
using Handler = std::function<void(const Request&, ExchangePtr)>;

/// Maps method and path to a handler. Patterns are literal segments, `{name}` (one segment) and
/// a trailing `{name*}` (the rest of the path, possibly empty). When several routes match, the
/// most specific wins: at the first segment where they differ, literal beats `{name}` beats
/// `{name*}`. HEAD falls back to the GET route.
class Router {
 public:
  /// Fails on a malformed pattern (not starting with '/', a wildcard before the end, an empty
  /// parameter name) or a route already registered for the same method and pattern.
  Status add(std::string method, std::string pattern, Handler handler);

  struct Match {
    /// Null when nothing answers this method on this path.
    const Handler* handler = nullptr;
    /// The matched route's pattern: its name in metrics and logs.
    std::string route;
    std::vector<std::pair<std::string, std::string>> params;
    /// When the path matched but the method did not: the methods that would (for 405 Allow).
    std::vector<std::string> allowed;
  };

  /// Finds the route for `method` on the raw (still percent-encoded) path. Segments are decoded
  /// one by one, so an encoded '/' stays inside its parameter.
  Match match(std::string_view method, std::string_view raw_path) const;

  /// Sorted, comma-separated list of the methods routed for `raw_path` (HEAD added with GET,
  /// OPTIONS always), or empty when no route matches the path.
  std::string allow_header(std::string_view raw_path) const;

  /// Routes the exchange's request: fills its params and route and calls the handler, or answers
  /// 404/405 problem+json itself.
  void dispatch(const ExchangePtr& exchange) const;

 private:
  enum class SegmentKind { kLiteral = 0, kParam = 1, kWildcard = 2 };
  struct Segment {
    SegmentKind kind;
    std::string text;
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    Handler handler;
  };
  struct PathHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  bool match_route(const Route& route, const std::vector<std::string>& segments,
                   std::vector<std::pair<std::string, std::string>>* params) const;
  std::vector<std::string> methods_for(const std::vector<std::string>& segments) const;
  /// The full search: every route against the decoded segments.
  Match search(std::string_view method, std::string_view raw_path) const;
  void index_literal_routes();

  std::vector<Route> routes_;
  /// Routes made only of literal segments, by their path, each kept only where the full
  /// search of its own path and method finds it: such a request (POST /api/orders) is answered
  /// by one lookup, with the same route the search would pick.
  std::unordered_map<std::string, std::vector<std::pair<std::string, size_t>>, PathHash,
                     std::equal_to<>>
      literal_;
};

/// Splits a raw path into decoded segments ("/a/b%20c" -> {"a", "b c"}); nullopt when a segment
/// decodes to a NUL byte.
std::optional<std::vector<std::string>> split_path(std::string_view raw_path);

}  // namespace hawker::http
