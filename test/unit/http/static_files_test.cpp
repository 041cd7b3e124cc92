#include "http/static_files.h"

#include <doctest/doctest.h>

#include "http/gzip.h"

using namespace hawker::http;

namespace {

class Recorder final : public ExchangeSink {
 public:
  void exchange_updated(Exchange& exchange) override {
    if (auto r = exchange.take_response()) responses.push_back(std::move(*r));
  }
  std::vector<Response> responses;
};

Response serve(std::string path_param, Headers headers = {}) {
  Router router;
  REQUIRE(router.add("GET", "/{path*}", static_handler()));
  Recorder rec;
  Request req;
  req.method = "GET";
  req.raw_path = "/" + path_param;
  req.path = req.raw_path;
  req.headers = std::move(headers);
  router.dispatch(std::make_shared<Exchange>(&rec, std::move(req)));
  REQUIRE(rec.responses.size() == 1);
  return rec.responses[0];
}

}  // namespace

TEST_CASE("web/static is embedded with type, ETag and a gzip copy") {
  const EmbeddedFile* index = find_embedded("/index.html");
  REQUIRE(index != nullptr);
  CHECK(index->content_type == "text/html; charset=utf-8");
  CHECK(index->bytes.find("<title>Live shopping</title>") != std::string_view::npos);
  CHECK(index->etag.size() > 10);
  CHECK(index->etag.front() == '"');
  CHECK(index->etag != index->etag_gzip);
  REQUIRE_FALSE(index->gzipped.empty());
  CHECK(gzip_decompress(index->gzipped, 1 << 20) == std::string(index->bytes));
  CHECK(find_embedded("/missing.html") == nullptr);
  auto files = embedded_files();
  for (size_t i = 1; i < files.size(); ++i) CHECK(files[i - 1].path < files[i].path);
}

TEST_CASE("the static handler serves index, gzip and 304") {
  Response r = serve("");
  CHECK(r.status == 200);
  CHECK(r.body_view().find("<title>Live shopping</title>") != std::string_view::npos);
  std::string etag(*r.headers.get("ETag"));
  CHECK(r.headers.get("Cache-Control") == "no-cache");

  Headers gz;
  gz.add("Accept-Encoding", "gzip");
  Response g = serve("index.html", gz);
  CHECK(g.headers.get("Content-Encoding") == "gzip");
  CHECK(g.headers.get("ETag") != etag);

  Headers inm;
  inm.add("If-None-Match", "\"other\", " + etag);
  CHECK(serve("index.html", inm).status == 304);
  CHECK(serve("nope.js").status == 404);
  CHECK(etag_matches("W/" + etag, etag));
  CHECK(etag_matches("*", etag));
  CHECK_FALSE(etag_matches("\"x\"", etag));
}
