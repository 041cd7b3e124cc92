#include "http/router.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace hawker::http {

std::optional<std::vector<std::string>> split_path(std::string_view raw_path) {
  std::vector<std::string> out;
  if (raw_path.empty() || raw_path.front() != '/') return std::nullopt;
  size_t pos = 1;
  // "/" has no segments; "/a/" has "a" and an empty last segment, kept so "/a/" != "/a".
  if (raw_path.size() == 1) return out;
  while (true) {
    size_t slash = raw_path.find('/', pos);
    std::string_view seg = raw_path.substr(
        pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    auto decoded = percent_decode(seg, false);
    if (!decoded) return std::nullopt;
    out.push_back(std::move(*decoded));
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  return out;
}

Status Router::add(std::string method, std::string pattern, Handler handler) {
  if (pattern.empty() || pattern.front() != '/') {
    return unexpected(ErrorCode::kInvalidArgument,
                      fmt::format("route pattern '{}' must start with '/'", pattern));
  }
  Route route;
  route.method = std::move(method);
  route.pattern = pattern;
  route.handler = std::move(handler);
  auto raw = split_path(pattern);
  if (!raw) return unexpected(ErrorCode::kInvalidArgument, "route pattern holds NUL");
  for (size_t i = 0; i < raw->size(); ++i) {
    const std::string& s = (*raw)[i];
    if (s.size() >= 2 && s.front() == '{' && s.back() == '}') {
      std::string name = s.substr(1, s.size() - 2);
      bool wildcard = !name.empty() && name.back() == '*';
      if (wildcard) name.pop_back();
      if (name.empty()) {
        return unexpected(ErrorCode::kInvalidArgument,
                          fmt::format("route pattern '{}' has an unnamed parameter", pattern));
      }
      if (wildcard && i + 1 != raw->size()) {
        return unexpected(ErrorCode::kInvalidArgument,
                          fmt::format("route pattern '{}': a wildcard must be last", pattern));
      }
      route.segments.push_back({wildcard ? SegmentKind::kWildcard : SegmentKind::kParam, name});
    } else {
      route.segments.push_back({SegmentKind::kLiteral, s});
    }
  }
  for (const auto& r : routes_) {
    if (r.method == route.method && r.pattern == route.pattern) {
      return unexpected(ErrorCode::kAlreadyExists,
                        fmt::format("route {} {} already exists", route.method, pattern));
    }
  }
  routes_.push_back(std::move(route));
  index_literal_routes();
  return ok_status();
}

void Router::index_literal_routes() {
  // Routes are added at start; the index is made again after each, from the full search.
  literal_.clear();
  for (size_t i = 0; i < routes_.size(); ++i) {
    const Route& r = routes_[i];
    bool literal = std::all_of(r.segments.begin(), r.segments.end(),
                               [](const Segment& s) { return s.kind == SegmentKind::kLiteral; });
    // A pattern holding '%' is matched against decoded segments: only the search knows it.
    if (!literal || r.pattern.find('%') != std::string::npos) continue;
    Match found = search(r.method, r.pattern);
    if (found.handler != &r.handler) continue;
    literal_[r.pattern].emplace_back(r.method, i);
  }
}

bool Router::match_route(const Route& route, const std::vector<std::string>& segments,
                         std::vector<std::pair<std::string, std::string>>* params) const {
  size_t i = 0;
  for (; i < route.segments.size(); ++i) {
    const Segment& s = route.segments[i];
    if (s.kind == SegmentKind::kWildcard) {
      if (params != nullptr) {
        std::string rest;
        for (size_t j = i; j < segments.size(); ++j) {
          if (j > i) rest += '/';
          rest += segments[j];
        }
        params->emplace_back(s.text, std::move(rest));
      }
      return true;
    }
    if (i >= segments.size()) return false;
    if (s.kind == SegmentKind::kLiteral) {
      if (segments[i] != s.text) return false;
    } else {
      // A parameter names one non-empty segment.
      if (segments[i].empty()) return false;
      if (params != nullptr) params->emplace_back(s.text, segments[i]);
    }
  }
  return i == segments.size();
}

namespace {

// Lower ranks are more specific; compared segment by segment.
template <typename Segments>
bool more_specific(const Segments& a, const Segments& b) {
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (a[i].kind != b[i].kind) return a[i].kind < b[i].kind;
  }
  return a.size() > b.size();
}

}  // namespace

Router::Match Router::match(std::string_view method, std::string_view raw_path) const {
  // Without a '%', the path's segments are its own text, and a literal route's pattern is
  // the path it answers.
  if (raw_path.find('%') == std::string_view::npos) {
    auto it = literal_.find(raw_path);
    if (it != literal_.end()) {
      for (const auto& [route_method, index] : it->second) {
        if (route_method != method) continue;
        Match m;
        m.handler = &routes_[index].handler;
        m.route = routes_[index].pattern;
        return m;
      }
    }
  }
  return search(method, raw_path);
}

Router::Match Router::search(std::string_view method, std::string_view raw_path) const {
  Match m;
  auto segments = split_path(raw_path);
  if (!segments) return m;
  const Route* best = nullptr;
  const Route* best_get = nullptr;
  for (const auto& r : routes_) {
    if (!match_route(r, *segments, nullptr)) continue;
    if (r.method == method) {
      if (best == nullptr || more_specific(r.segments, best->segments)) best = &r;
    } else if (method == "HEAD" && r.method == "GET") {
      if (best_get == nullptr || more_specific(r.segments, best_get->segments)) best_get = &r;
    }
  }
  if (best == nullptr) best = best_get;
  if (best == nullptr) {
    m.allowed = methods_for(*segments);
    return m;
  }
  match_route(*best, *segments, &m.params);
  m.handler = &best->handler;
  m.route = best->pattern;
  return m;
}

std::vector<std::string> Router::methods_for(const std::vector<std::string>& segments) const {
  std::set<std::string> methods;
  for (const auto& r : routes_) {
    if (!match_route(r, segments, nullptr)) continue;
    methods.insert(r.method);
    if (r.method == "GET") methods.insert("HEAD");
  }
  if (!methods.empty()) methods.insert("OPTIONS");
  return {methods.begin(), methods.end()};
}

std::string Router::allow_header(std::string_view raw_path) const {
  auto segments = split_path(raw_path);
  if (!segments) return {};
  auto methods = methods_for(*segments);
  std::string out;
  for (const auto& m : methods) {
    if (!out.empty()) out += ", ";
    out += m;
  }
  return out;
}

void Router::dispatch(const ExchangePtr& exchange) const {
  Request& request = exchange->mutable_request();
  Match m = match(request.method, request.raw_path);
  if (m.handler != nullptr) {
    request.params = std::move(m.params);
    request.route = std::move(m.route);
    (*m.handler)(request, exchange);
    return;
  }
  if (m.allowed.empty()) {
    exchange->respond(Response::problem(404, "not-found", "Not found",
                                        fmt::format("no resource at {}", request.path)));
    return;
  }
  std::string allow;
  for (const auto& a : m.allowed) {
    if (!allow.empty()) allow += ", ";
    allow += a;
  }
  Response r =
      Response::problem(405, "method-not-allowed", "Method not allowed",
                        fmt::format("{} is not allowed on {}", request.method, request.path));
  r.headers.set("Allow", allow);
  exchange->respond(std::move(r));
}

}  // namespace hawker::http
