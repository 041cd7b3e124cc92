#include "http/request.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "http/response.h"

using namespace hawker::http;

TEST_CASE("query values are percent and plus decoded") {
  std::string_view q = "a=1&name=J%C3%BCrgen+M%C3%BCller&flag&empty=&x=%2B%26&a=2";
  CHECK(query_value(q, "a") == "1");
  CHECK(query_value(q, "name") == "J\xC3\xBCrgen M\xC3\xBCller");
  CHECK(query_value(q, "flag") == "");
  CHECK(query_value(q, "empty") == "");
  CHECK(query_value(q, "x") == "+&");
  CHECK_FALSE(query_value(q, "missing").has_value());
  CHECK(query_value("_HLS_msn=12&_HLS_part=3", "_HLS_part") == "3");
  CHECK(query_value("k%20ey=v", "k ey") == "v");
}

TEST_CASE("malformed percent escapes stay literal and NUL is refused") {
  CHECK(percent_decode("100%", false) == "100%");
  CHECK(percent_decode("%zz%4", false) == "%zz%4");
  CHECK(percent_decode("a+b", false) == "a+b");
  CHECK(percent_decode("a+b", true) == "a b");
  CHECK_FALSE(percent_decode("a%00b", false).has_value());
  CHECK_FALSE(query_value("a=%00", "a").has_value());
}

TEST_CASE("headers are found case-insensitively") {
  Headers h;
  h.add("Content-Type", "text/plain");
  h.add("X-Thing", "1");
  h.add("x-thing", "2");
  CHECK(h.get("content-type") == "text/plain");
  CHECK(h.get("X-THING") == "1");
  h.set("X-Thing", "3");
  CHECK(h.get("x-thing") == "3");
  CHECK(h.fields().size() == 2);
  CHECK_FALSE(h.get("missing").has_value());
}

TEST_CASE("problem responses are RFC 9457 documents with a stable type") {
  Response r = Response::problem(404, "not-found", "Not found", "no product p_1");
  CHECK(r.status == 404);
  CHECK(r.headers.get("Content-Type") == "application/problem+json");
  auto doc = nlohmann::json::parse(r.body_view());
  CHECK(doc["type"] == "/problems/not-found");
  CHECK(doc["title"] == "Not found");
  CHECK(doc["status"] == 404);
  CHECK(doc["detail"] == "no product p_1");
}

TEST_CASE("response bodies are viewed whatever holds them") {
  auto bytes = std::make_shared<const std::vector<uint8_t>>(std::vector<uint8_t>{'a', 'b'});
  CHECK(Response::bytes(200, bytes, "video/mp4").body_view() == "ab");
  auto text = std::make_shared<const std::string>("#EXTM3U");
  CHECK(Response::shared_text(200, text, "application/vnd.apple.mpegurl").body_view() == "#EXTM3U");
  CHECK(Response::json(200, {{"a", 1}}).body_view() == R"({"a":1})");
  CHECK(is_compressible("application/vnd.apple.mpegurl"));
  CHECK(is_compressible("text/html; charset=utf-8"));
  CHECK(is_compressible("application/json"));
  CHECK_FALSE(is_compressible("video/mp4"));
  CHECK_FALSE(is_compressible("image/png"));
}
