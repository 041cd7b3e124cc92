#pragma once

#include <nlohmann/json.hpp>
#include <optional>

#include "http/request.h"
#include "http/response.h"

namespace hawker::commerce {

/// The request's body as a JSON object, or the 400/415 problem to answer instead.
std::optional<http::Response> parse_json_object(const http::Request& request, nlohmann::json& out);
/// The 415 problem when the request says its body is not JSON (parse_json_object's first check).
std::optional<http::Response> json_content_type_problem(const http::Request& request);

/// 422 problem+json naming the offending field in `detail` and in an `errors` member.
http::Response field_problem(int status, std::string_view field, std::string_view message);

}  // namespace hawker::commerce
