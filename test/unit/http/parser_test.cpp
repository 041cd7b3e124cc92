#include "http/parser.h"

#include <doctest/doctest.h>

#include <string>

using namespace hawker::http;

namespace {

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Feeds everything, collecting requests until the bytes run out or an error.
struct Parsed {
  std::vector<Request> requests;
  std::optional<ParseError> error;
};
Parsed parse_all(RequestParser& parser, std::string input, size_t read_size = 1 << 20) {
  Parsed out;
  std::string buffer;
  size_t offset = 0;
  while (offset < input.size()) {
    buffer += input.substr(offset, read_size);
    offset += read_size;
    while (!buffer.empty()) {
      auto o = parser.feed(bytes(buffer));
      buffer.erase(0, o.consumed);
      if (o.error) {
        out.error = o.error;
        return out;
      }
      if (!o.request) break;
      out.requests.push_back(std::move(*o.request));
    }
  }
  return out;
}

}  // namespace

TEST_CASE("pipelined requests come out one at a time, whatever the read size") {
  std::string input =
      "GET /a%20b?x=1&y=two+words HTTP/1.1\r\nHost: h\r\nX-Id: 1\r\n\r\n"
      "POST /orders HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
      "GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  for (size_t read_size : {1, 2, 7, 64, 4096}) {
    CAPTURE(read_size);
    RequestParser parser;
    auto parsed = parse_all(parser, input, read_size);
    REQUIRE_FALSE(parsed.error.has_value());
    REQUIRE(parsed.requests.size() == 3);
    CHECK(parsed.requests[0].method == "GET");
    CHECK(parsed.requests[0].path == "/a b");
    CHECK(parsed.requests[0].raw_path == "/a%20b");
    CHECK(parsed.requests[0].query("y") == "two words");
    CHECK(parsed.requests[0].header("x-id") == "1");
    CHECK(parsed.requests[0].keep_alive);
    CHECK(parsed.requests[1].method == "POST");
    CHECK(parsed.requests[1].body == "hello");
    CHECK(parsed.requests[2].path == "/c");
    CHECK_FALSE(parsed.requests[2].keep_alive);
  }
}

TEST_CASE("chunked request bodies are reassembled") {
  RequestParser parser;
  auto parsed = parse_all(parser,
                          "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                          3);
  REQUIRE(parsed.requests.size() == 1);
  CHECK(parsed.requests[0].body == "hello world");
}

TEST_CASE("limits give 431, 414 and 413") {
  ParserLimits limits{256, 16};
  {
    RequestParser parser(limits);
    auto parsed =
        parse_all(parser, "GET / HTTP/1.1\r\nX-Big: " + std::string(400, 'a') + "\r\n\r\n");
    REQUIRE(parsed.error.has_value());
    CHECK(parsed.error->status == 431);
  }
  {
    RequestParser parser(limits);
    auto parsed = parse_all(parser, "GET /" + std::string(400, 'a') + " HTTP/1.1\r\n\r\n");
    REQUIRE(parsed.error.has_value());
    CHECK(parsed.error->status == 414);
  }
  {
    RequestParser parser(limits);
    auto parsed = parse_all(parser, "POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n");
    REQUIRE(parsed.error.has_value());
    CHECK(parsed.error->status == 413);
  }
  {
    RequestParser parser(limits);
    auto parsed = parse_all(parser,
                            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n");
    REQUIRE(parsed.error.has_value());
    CHECK(parsed.error->status == 413);
  }
}

TEST_CASE("malformed requests are errors and the parser stays failed") {
  for (std::string bad : {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
                          "GET nopath HTTP/1.1\r\n\r\n", "GET / HTTP/2.0\r\n\r\n",
                          "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                          "GET /%00 HTTP/1.1\r\n\r\n"}) {
    CAPTURE(bad);
    RequestParser parser;
    auto parsed = parse_all(parser, bad);
    REQUIRE(parsed.error.has_value());
    CHECK(parsed.error->status >= 400);
    CHECK(parser.failed());
    CHECK(parser.feed(bytes("GET / HTTP/1.1\r\n\r\n")).error.has_value());
  }
}

TEST_CASE("phases follow the message and Expect: 100-continue is reported once") {
  RequestParser parser;
  CHECK(parser.phase() == ParsePhase::kIdle);
  (void)parser.feed(bytes("POST /x HTTP/1.1\r\nHo"));
  CHECK(parser.phase() == ParsePhase::kHeaders);
  (void)parser.feed(bytes("st: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"));
  CHECK(parser.phase() == ParsePhase::kBody);
  CHECK(parser.take_expect_continue());
  CHECK_FALSE(parser.take_expect_continue());
  auto o = parser.feed(bytes("abc"));
  REQUIRE(o.request.has_value());
  CHECK(o.request->body == "abc");
  CHECK(parser.phase() == ParsePhase::kIdle);
}

TEST_CASE("absolute-form targets and HTTP/1.0 keep-alive") {
  RequestParser first;
  auto parsed = parse_all(first, "GET http://example.com/p?q=1 HTTP/1.0\r\n\r\n");
  REQUIRE(parsed.requests.size() == 1);
  CHECK(parsed.requests[0].path == "/p");
  CHECK(parsed.requests[0].query("q") == "1");
  CHECK_FALSE(parsed.requests[0].keep_alive);

  RequestParser second;
  parsed = parse_all(second, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  REQUIRE(parsed.requests.size() == 1);
  CHECK(parsed.requests[0].keep_alive);
}
