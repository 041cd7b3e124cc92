#include "http/sse.h"

#include <doctest/doctest.h>

using namespace hawker::http;

namespace {
SseEvent data_only(std::string data, std::string id = {}) {
  SseEvent e;
  e.id = std::move(id);
  e.data = std::move(data);
  return e;
}
}  // namespace

TEST_CASE("SSE events put each data line on its own field and end with a blank line") {
  SseEvent e;
  e.id = "42";
  e.event = "stock";
  e.data = "{\"sku\":\"a\"}\nsecond\r\nthird\rfourth";
  e.retry_ms = 3000;
  CHECK(format_sse(e) ==
        "id: 42\nevent: stock\nretry: 3000\n"
        "data: {\"sku\":\"a\"}\ndata: second\ndata: third\ndata: fourth\n\n");
  CHECK(format_sse(data_only("x")) == "data: x\n\n");
  CHECK(format_sse(data_only("")) == "data: \n\n");
  // A newline in id or event would end the field early and forge another.
  CHECK(format_sse(data_only("x", "1\nevent: evil")) == "id: 1event: evil\ndata: x\n\n");
  CHECK(format_sse_comment("keep-alive") == ": keep-alive\n\n");
}

TEST_CASE("Last-Event-ID comes from the header, else the query") {
  Request r;
  r.raw_query = "lastEventId=17";
  CHECK(last_event_id(r) == "17");
  r.headers.add("last-event-id", "21");
  CHECK(last_event_id(r) == "21");
  Request none;
  CHECK_FALSE(last_event_id(none).has_value());
  CHECK(sse_headers().get("Content-Type") == "text/event-stream; charset=utf-8");
}
