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

/// A handler that writes its name, then (with `route`) the route it was reached by, then the
/// parameters it got, into `seen`.
Handler named_handler(std::string& seen, std::string name, bool route = false) {
  return [&seen, name, route](const Request& req, ExchangePtr ex) {
    seen = route ? name + " " + req.route : name;
    for (const auto& [k, v] : req.params) seen += " " + k + "=" + v;
    ex->respond(Response::text(200, "ok"));
  };
}

}  // namespace

TEST_CASE("routes match literals, parameters and wildcards, most specific first") {
  Router router;
  std::string seen;
  auto named = [&](std::string name) { return named_handler(seen, std::move(name)); };
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

TEST_CASE("a literal route is looked up directly only where the full search picks it too") {
  Router router;
  std::string seen;
  auto named = [&](std::string name) { return named_handler(seen, std::move(name), true); };
  REQUIRE(router.add("POST", "/api/orders", named("order")));
  REQUIRE(router.add("GET", "/api/orders", named("list")));
  REQUIRE(router.add("GET", "/a/b", named("literal")));
  // Longer, and equal in kinds as far as the shorter goes: by the specificity rule this one
  // answers "/a/b" too, added before or after the literal route.
  REQUIRE(router.add("GET", "/a/b/{rest*}", named("rest")));
  REQUIRE(router.add("GET", "/c/d/{rest*}", named("rest")));
  REQUIRE(router.add("GET", "/c/d", named("literal")));
  REQUIRE(router.add("GET", "/e/{x}", named("param")));
  REQUIRE(router.add("GET", "/e/f", named("literal")));
  Recorder rec;
  auto run = [&](std::string method, std::string path) {
    seen.clear();
    router.dispatch(std::make_shared<Exchange>(&rec, make_request(method, path)));
    return seen;
  };
  CHECK(run("POST", "/api/orders") == "order /api/orders");
  CHECK(run("GET", "/api/orders") == "list /api/orders");
  CHECK(run("HEAD", "/api/orders") == "list /api/orders");
  CHECK(run("POST", "/api/ord%65rs") == "order /api/orders");
  CHECK(run("GET", "/a/b") == "rest /a/b/{rest*} rest=");
  CHECK(run("GET", "/c/d") == "rest /c/d/{rest*} rest=");
  CHECK(run("GET", "/e/f") == "literal /e/f");
  CHECK(run("GET", "/e/g") == "param /e/{x} x=g");
  CHECK(run("DELETE", "/api/orders").empty());
  CHECK(rec.responses.back().status == 405);
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
