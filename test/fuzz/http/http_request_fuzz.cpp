// Feeds arbitrary bytes through the server's own parser glue, router and query decoding, split
// into reads at sizes the input chooses, as a connection would see them.
#include <cstddef>
#include <cstdint>
#include <span>

#include "http/exchange.h"
#include "http/gzip.h"
#include "http/parser.h"
#include "http/router.h"
#include "http/sse.h"

namespace {

using namespace hawker::http;

class Recorder final : public ExchangeSink {
 public:
  void exchange_updated(Exchange& exchange) override {
    if (auto r = exchange.take_response()) last_status = r->status;
  }
  int last_status = 0;
};

const Router& router() {
  static Router* r = [] {
    auto* router = new Router;
    auto echo = [](const Request& req, ExchangePtr ex) {
      std::string out(req.param("id"));
      out += req.query("q").value_or("");
      out += req.query("_HLS_msn").value_or("");
      if (auto id = last_event_id(req)) out += *id;
      ex->respond(Response::text(200, out));
    };
    (void)router->add("GET", "/api/products/{id}", echo);
    (void)router->add("POST", "/api/orders", echo);
    (void)router->add("GET", "/hls/{stream}/{file*}", echo);
    (void)router->add("GET", "/", echo);
    return router;
  }();
  return *r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the read size, so one input explores how requests split across reads.
  size_t chunk = (data[0] % 64) + 1;
  std::span<const uint8_t> input(data + 1, size - 1);
  RequestParser parser(ParserLimits{4096, 8192});
  Recorder recorder;
  std::vector<uint8_t> pending;
  size_t offset = 0;
  while (offset < input.size() && !parser.failed()) {
    size_t n = std::min(chunk, input.size() - offset);
    pending.insert(pending.end(), input.begin() + offset, input.begin() + offset + n);
    offset += n;
    while (!pending.empty()) {
      auto outcome = parser.feed(pending);
      pending.erase(pending.begin(), pending.begin() + outcome.consumed);
      if (outcome.error) break;
      if (!outcome.request) break;
      auto exchange = std::make_shared<Exchange>(&recorder, std::move(*outcome.request));
      router().dispatch(exchange);
      (void)router().allow_header(exchange->request().raw_path);
      if (auto ae = exchange->request().header("Accept-Encoding")) (void)accepts_gzip(*ae);
    }
  }
  return 0;
}
