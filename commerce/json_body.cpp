#include "commerce/json_body.h"

#include <fmt/format.h>

namespace hawker::commerce {

std::optional<http::Response> json_content_type_problem(const http::Request& request) {
  auto type = request.header("Content-Type");
  if (type && type->find("json") == std::string_view::npos) {
    return http::Response::problem(415, "unsupported-media-type", "Unsupported media type",
                                   "send application/json");
  }
  return std::nullopt;
}

std::optional<http::Response> parse_json_object(const http::Request& request, nlohmann::json& out) {
  if (auto problem = json_content_type_problem(request)) return problem;
  out = nlohmann::json::parse(request.body, nullptr, false);
  if (out.is_discarded() || !out.is_object()) {
    return http::Response::problem(400, "bad-json", "Malformed JSON",
                                   "the body must be a JSON object");
  }
  return std::nullopt;
}

http::Response field_problem(int status, std::string_view field, std::string_view message) {
  nlohmann::json doc = {{"type", "/problems/invalid-field"},
                        {"title", "Invalid field"},
                        {"status", status},
                        {"detail", fmt::format("{}: {}", field, message)},
                        {"errors", {{{"field", field}, {"message", message}}}}};
  http::Response r = http::Response::json(status, doc);
  r.headers.set("Content-Type", "application/problem+json");
  return r;
}

}  // namespace hawker::commerce
