#include "http/response.h"

#include <nlohmann/json.hpp>

namespace hawker::http {

std::string_view Response::body_view() const {
  if (const auto* s = std::get_if<std::string>(&body)) return *s;
  if (const auto* b = std::get_if<SharedBytes>(&body)) {
    if (!*b) return {};
    return std::string_view(reinterpret_cast<const char*>((*b)->data()), (*b)->size());
  }
  if (const auto* st = std::get_if<StaticBody>(&body)) return st->bytes;
  if (const auto* sealed = std::get_if<SharedSealedBytes>(&body)) {
    return *sealed ? (*sealed)->view() : std::string_view();
  }
  const auto& t = std::get<SharedText>(body);
  if (!t) return {};
  return *t;
}

Response Response::json(int status, const nlohmann::json& value) {
  Response r;
  r.status = status;
  r.headers.set("Content-Type", "application/json");
  // Replacing invalid UTF-8 keeps a stray byte in stored data from turning a response into an
  // exception on the data path.
  r.body = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

namespace {

/// A response of `status` with `body` (any of Response::body's kinds) of `content_type`.
template <typename Body>
Response with_body(int status, Body body, std::string content_type) {
  Response r;
  r.status = status;
  r.headers.set("Content-Type", std::move(content_type));
  r.body = std::move(body);
  return r;
}

}  // namespace

Response Response::text(int status, std::string body, std::string content_type) {
  return with_body(status, std::move(body), std::move(content_type));
}

Response Response::bytes(int status, SharedBytes body, std::string content_type) {
  return with_body(status, std::move(body), std::move(content_type));
}

Response Response::sealed(int status, SharedSealedBytes body, std::string content_type) {
  return with_body(status, std::move(body), std::move(content_type));
}

Response Response::shared_text(int status, SharedText body, std::string content_type) {
  return with_body(status, std::move(body), std::move(content_type));
}

Response Response::empty(int status) {
  Response r;
  r.status = status;
  return r;
}

Response Response::problem(int status, std::string_view slug, std::string_view title,
                           std::string_view detail) {
  nlohmann::json doc = {
      {"type", "/problems/" + std::string(slug)},
      {"title", std::string(title)},
      {"status", status},
  };
  if (!detail.empty()) doc["detail"] = std::string(detail);
  Response r = json(status, doc);
  r.headers.set("Content-Type", "application/problem+json");
  return r;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 422:
      return "Unprocessable Content";
    case 425:
      return "Too Early";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
  }
  return "Unknown";
}

bool is_compressible(std::string_view content_type) {
  std::string_view t = content_type.substr(0, content_type.find(';'));
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  if (t.size() >= 5 && iequals(t.substr(0, 5), "text/")) return true;
  for (std::string_view known :
       {"application/json", "application/problem+json", "application/vnd.apple.mpegurl",
        "application/x-mpegurl", "application/javascript", "application/manifest+json",
        "image/svg+xml", "application/xml"}) {
    if (iequals(t, known)) return true;
  }
  return false;
}

}  // namespace hawker::http
