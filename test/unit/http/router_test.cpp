#include "http/router.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

using namespace hawker::http;

namespace {

class Recorder final : public ExchangeSink {
 public:
  void exchange_updated(Exchange& exchange) override {
    if (auto r = exchange.take_response()) responses.push_back(std::move(*r));
  }
  std::vector<Response> responses;
};

Request make_request(std::string method, std::string raw_path) {
  Request r;
  r.method = std::move(method);
  r.raw_path = raw_path;
  r.path = raw_path;
  return r;
}

}  // namespace

TEST_CASE("routes match literals, parameters and wildcards, most specific first") {
  Router router;
  std::string seen;
  auto named = [&](std::string name) {
    return [&seen, name](const Request& req, ExchangePtr ex) {
      seen = name;
      for (const auto& [k, v] : req.params) seen += " " + k + "=" + v;
      ex->respond(Response::text(200, "ok"));
    };
  };
  REQUIRE(router.add("GET", "/api/products/{id}", named("product")));
  REQUIRE(router.add("GET", "/api/products/featured", named("featured")));
  REQUIRE(router.add("GET", "/hls/{stream}/{file*}", named("hls")));
  REQUIRE(router.add("GET", "/{path*}", named("static")));
  REQUIRE(router.add("POST", "/api/products", named("create")));

  Recorder rec;
  auto run = [&](std::string method, std::string path) {
    seen.clear();
    auto ex = std::make_shared<Exchange>(&rec, make_request(method, path));
    router.dispatch(ex);
    return ex;
  };
  auto ex = run("GET", "/api/products/p_1");
  CHECK(seen == "product id=p_1");
  CHECK(ex->request().param("id") == "p_1");
  CHECK(ex->request().route == "/api/products/{id}");
  run("GET", "/api/products/featured");
  CHECK(seen == "featured");
  run("GET", "/api/products/a%2Fb");
  CHECK(seen == "product id=a/b");
  run("GET", "/hls/live/720p/part-3.m4s");
  CHECK(seen == "hls stream=live file=720p/part-3.m4s");
  run("GET", "/");
  CHECK(seen == "static path=");
  run("GET", "/css/site.css");
  CHECK(seen == "static path=css/site.css");
  run("POST", "/api/products");
  CHECK(seen == "create");
}

TEST_CASE("404 and 405 with Allow are problem+json; HEAD falls back to GET") {
  Router router;
  int calls = 0;
  auto ok = [&](const Request&, ExchangePtr ex) {
    ++calls;
    ex->respond(Response::text(200, "ok"));
  };
  REQUIRE(router.add("GET", "/api/orders/{id}", ok));
  REQUIRE(router.add("DELETE", "/api/orders/{id}", ok));
  REQUIRE(router.add("POST", "/api/orders", ok));

  Recorder rec;
  router.dispatch(std::make_shared<Exchange>(&rec, make_request("GET", "/nothing/here")));
  REQUIRE(rec.responses.size() == 1);
  CHECK(rec.responses[0].status == 404);
  CHECK(nlohmann::json::parse(rec.responses[0].body_view())["type"] == "/problems/not-found");

  router.dispatch(std::make_shared<Exchange>(&rec, make_request("PUT", "/api/orders/o_1")));
  REQUIRE(rec.responses.size() == 2);
  CHECK(rec.responses[1].status == 405);
  CHECK(rec.responses[1].headers.get("Allow") == "DELETE, GET, HEAD, OPTIONS");
  CHECK(rec.responses[1].headers.get("Content-Type") == "application/problem+json");

  router.dispatch(std::make_shared<Exchange>(&rec, make_request("HEAD", "/api/orders/o_1")));
  CHECK(calls == 1);
  CHECK(rec.responses.back().status == 200);

  CHECK(router.allow_header("/api/orders") == "OPTIONS, POST");
  CHECK(router.allow_header("/elsewhere").empty());
  // An empty segment is not a parameter value.
  router.dispatch(std::make_shared<Exchange>(&rec, make_request("GET", "/api/orders/")));
  CHECK(rec.responses.back().status == 404);
}

TEST_CASE("bad patterns and duplicates are refused") {
  Router router;
  auto h = [](const Request&, ExchangePtr) {};
  CHECK_FALSE(router.add("GET", "no-slash", h));
  CHECK_FALSE(router.add("GET", "/a/{rest*}/b", h));
  CHECK_FALSE(router.add("GET", "/a/{}", h));
  CHECK(router.add("GET", "/a/{id}", h));
  CHECK_FALSE(router.add("GET", "/a/{id}", h));
}

TEST_CASE("an exchange answers once and not after the client left") {
  Recorder rec;
  auto ex = std::make_shared<Exchange>(&rec, make_request("GET", "/"));
  bool aborted = false;
  ex->on_abort([&] { aborted = true; });
  ex->respond(Response::text(200, "first"));
  ex->respond(Response::text(200, "second"));
  REQUIRE(rec.responses.size() == 1);
  CHECK(rec.responses[0].body_view() == "first");
  ex->abort();
  CHECK_FALSE(aborted);

  auto held = std::make_shared<Exchange>(&rec, make_request("GET", "/"));
  held->on_abort([&] { aborted = true; });
  held->abort();
  CHECK(aborted);
  held->respond(Response::text(200, "late"));
  CHECK(rec.responses.size() == 1);
  CHECK(held->start_stream(200, {}) == nullptr);
}
