#include "http/server.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/loop.h"
#include "core/metrics.h"
#include "http/gzip.h"
#include "http/sse.h"

using namespace hawker;
using namespace hawker::http;

namespace {

struct ClientResponse {
  bool ok = false;
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// A blocking HTTP/1.1 client for tests: raw bytes out, one parsed response at a time back.
class Client {
 public:
  explicit Client(int port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Client() { ::close(fd_); }
  bool connected() const { return connected_; }

  void send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }

  // Reads one response; `head_only` for answers to HEAD.
  ClientResponse read_response(bool head_only = false) {
    ClientResponse r;
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return r;
    }
    std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    if (status_line.size() < 12) return r;
    r.status = std::stoi(status_line.substr(9, 3));
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t next = head.find("\r\n", pos);
      if (next == std::string::npos) next = head.size();
      std::string line = head.substr(pos, next - pos);
      size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[name] = value;
      pos = next + 2;
    }
    if (head_only || r.status == 204 || r.status == 304) {
      r.ok = true;
      return r;
    }
    if (r.header("transfer-encoding") == "chunked") {
      while (true) {
        while (buf_.find("\r\n") == std::string::npos) {
          if (!fill()) return r;
        }
        size_t le = buf_.find("\r\n");
        size_t size = std::stoul(buf_.substr(0, le), nullptr, 16);
        while (buf_.size() < le + 2 + size + 2) {
          if (!fill()) return r;
        }
        r.body += buf_.substr(le + 2, size);
        buf_.erase(0, le + 2 + size + 2);
        if (size == 0) break;
      }
    } else {
      size_t length =
          std::stoul(r.header("content-length").empty() ? "0" : r.header("content-length"));
      while (buf_.size() < length) {
        if (!fill()) return r;
      }
      r.body = buf_.substr(0, length);
      buf_.erase(0, length);
    }
    r.ok = true;
    return r;
  }

  // Reads stream bytes until `needle` shows up.
  bool read_until(std::string_view needle) {
    while (buf_.find(needle) == std::string::npos) {
      if (!fill()) return false;
    }
    return true;
  }

  // True when the server closed the connection (EOF or reset) and sent nothing more.
  bool closed_by_peer() {
    char c;
    ssize_t n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

 private:
  bool fill() {
    char tmp[16384];
    ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

// A server on port 0 with a loop run on the test thread while the client runs on another.
struct Harness {
  Loop loop;
  Metrics metrics;
  Router router;
  ServerLimits limits;
  CorsPolicy cors;
  std::unique_ptr<Server> server;
  std::unique_ptr<Mailbox> mailbox;
  std::vector<std::unique_ptr<Timer>> timers;
  int port = 0;

  void start() {
    server = std::make_unique<Server>(loop, router, limits, metrics, cors);
    mailbox = std::make_unique<Mailbox>(loop);
    auto bound = server->listen("127.0.0.1", 0);
    REQUIRE(bound.has_value());
    port = *bound;
  }

  // Runs the loop until `client` is done and the server has shut down gracefully.
  void run(const std::function<void()>& client, std::function<void()> on_shutdown = {}) {
    std::thread t([&] {
      client();
      mailbox->post([&] {
        if (on_shutdown) on_shutdown();
        server->shutdown(2000, [&] { mailbox->close(); });
      });
    });
    loop.run();
    t.join();
  }

  // Timers for handlers; destroyed before the loop closes so their handles are freed.
  Timer& make_timer() {
    timers.push_back(std::make_unique<Timer>(loop));
    return *timers.back();
  }

  int finish() {
    timers.clear();
    server.reset();
    mailbox.reset();
    return loop.close();
  }
};

std::string get(std::string_view path, std::string_view extra = "") {
  return fmt::format("GET {} HTTP/1.1\r\nHost: test\r\n{}\r\n", path, extra);
}

}  // namespace

TEST_CASE("keep-alive serves several requests on one connection and records metrics") {
  Harness h;
  REQUIRE(h.router.add("GET", "/items/{id}", [](const Request& req, ExchangePtr ex) {
    ex->respond(Response::json(
        200, {{"id", std::string(req.param("id"))}, {"q", req.query("q").value_or("")}}));
  }));
  h.start();
  h.run([&] {
    Client c(h.port);
    CHECK(c.connected());
    for (int i = 0; i < 3; ++i) {
      c.send(get(fmt::format("/items/i{}?q=a+b", i)));
      auto r = c.read_response();
      CHECK(r.ok);
      CHECK(r.status == 200);
      CHECK(r.header("connection") != "close");
      auto doc = nlohmann::json::parse(r.body);
      CHECK(doc["id"] == fmt::format("i{}", i));
      CHECK(doc["q"] == "a b");
    }
    c.send(get("/missing"));
    auto r = c.read_response();
    CHECK(r.status == 404);
    CHECK(r.header("content-type") == "application/problem+json");
  });
  std::string text = h.metrics.render();
  CHECK(text.find(
            "hawker_http_requests_total{route=\"/items/{id}\",method=\"GET\",status=\"200\"} 3") !=
        std::string::npos);
  CHECK(text.find(
            "hawker_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1") !=
        std::string::npos);
  CHECK(text.find("hawker_http_request_duration_seconds_count{route=\"/items/{id}\"} 3") !=
        std::string::npos);
  CHECK(text.find("hawker_http_open_connections 0") != std::string::npos);
  CHECK(h.finish() == 0);
}

TEST_CASE("pipelined requests are answered in order when the first answers late") {
  Harness h;
  // Fewer slots than requests: the third waits in the input buffer until the first is answered.
  h.limits.max_pipelined = 2;
  Timer& late = h.make_timer();
  REQUIRE(h.router.add("GET", "/slow", [&](const Request&, ExchangePtr ex) {
    late.start(80, 0, [ex] { ex->respond(Response::text(200, "slow")); });
  }));
  REQUIRE(h.router.add("GET", "/fast/{n}", [](const Request& req, ExchangePtr ex) {
    ex->respond(Response::text(200, "fast" + std::string(req.param("n"))));
  }));
  h.start();
  h.run([&] {
    Client c(h.port);
    c.send(get("/slow") + get("/fast/1") + get("/fast/2"));
    auto a = c.read_response();
    auto b = c.read_response();
    auto d = c.read_response();
    CHECK(a.body == "slow");
    CHECK(b.body == "fast1");
    CHECK(d.body == "fast2");
  });
  CHECK(h.finish() == 0);
}

TEST_CASE("chunked request bodies reach the handler whole") {
  Harness h;
  REQUIRE(h.router.add("POST", "/echo", [](const Request& req, ExchangePtr ex) {
    ex->respond(Response::text(201, req.body));
  }));
  h.start();
  h.run([&] {
    Client c(h.port);
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nstoc");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    c.send("k\r\n5\r\n left\r\n0\r\n\r\n");
    auto r = c.read_response();
    CHECK(r.status == 201);
    CHECK(r.body == "stock left");
  });
  CHECK(h.finish() == 0);
}

TEST_CASE("limits: 431 on huge headers, 413 on huge bodies, 400 on garbage, then close") {
  Harness h;
  h.limits.max_header_bytes = 1024;
  h.limits.max_body_bytes = 2048;
  REQUIRE(h.router.add("POST", "/upload", [](const Request& req, ExchangePtr ex) {
    ex->respond(Response::text(200, std::to_string(req.body.size())));
  }));
  h.start();
  h.run([&] {
    {
      Client c(h.port);
      c.send(get("/upload", "X-Huge: " + std::string(4000, 'x') + "\r\n"));
      auto r = c.read_response();
      CHECK(r.status == 431);
      CHECK(r.header("connection") == "close");
      CHECK(nlohmann::json::parse(r.body)["type"] == "/problems/header-fields-too-large");
      CHECK(c.closed_by_peer());
    }
    {
      Client c(h.port);
      c.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" +
             std::string(8192, 'b'));
      auto r = c.read_response();
      CHECK(r.status == 413);
      CHECK(c.closed_by_peer());
    }
    {
      Client c(h.port);
      c.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n" +
             std::string(2000, 'b'));
      auto r = c.read_response();
      CHECK(r.status == 200);
      CHECK(r.body == "2000");
      c.send("BLAH\x01 / HTTP/1.1\r\n\r\n");
      r = c.read_response();
      CHECK(r.status == 400);
      CHECK(r.header("content-type") == "application/problem+json");
      CHECK(c.closed_by_peer());
    }
  });
  CHECK(h.metrics.render().find("hawker_http_protocol_errors_total 3") != std::string::npos);
  CHECK(h.finish() == 0);
}

TEST_CASE("a client that stalls in its headers gets 408; an idle one is closed") {
  Harness h;
  h.limits.header_timeout_ms = 100;
  h.limits.idle_timeout_ms = 150;
  REQUIRE(h.router.add(
      "GET", "/", [](const Request&, ExchangePtr ex) { ex->respond(Response::text(200, "hi")); }));
  h.start();
  h.run([&] {
    {
      Client c(h.port);
      auto started = std::chrono::steady_clock::now();
      c.send("GET / HTTP/1.1\r\nHost: t\r\n");
      // Trickling bytes does not extend the header deadline.
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      c.send("X-A: 1\r\n");
      auto r = c.read_response();
      CHECK(r.status == 408);
      CHECK(c.closed_by_peer());
      CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
    }
    {
      Client c(h.port);
      c.send(get("/"));
      CHECK(c.read_response().status == 200);
      auto started = std::chrono::steady_clock::now();
      CHECK(c.closed_by_peer());
      CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(100));
    }
  });
  CHECK(h.finish() == 0);
}

TEST_CASE("HEAD gets GET's headers and length without the body; gzip for text") {
  Harness h;
  std::string big;
  for (int i = 0; i < 100; ++i) big += "#EXT-X-PART:DURATION=0.334,URI=\"p.m4s\"\n";
  REQUIRE(h.router.add("GET", "/playlist.m3u8", [&](const Request&, ExchangePtr ex) {
    ex->respond(Response::text(200, big, "application/vnd.apple.mpegurl"));
  }));
  auto part = std::make_shared<const std::vector<uint8_t>>(std::vector<uint8_t>(5000, 7));
  REQUIRE(h.router.add("GET", "/part.m4s", [&](const Request&, ExchangePtr ex) {
    ex->respond(Response::bytes(200, part, "video/mp4"));
  }));
  h.start();
  h.run([&] {
    Client c(h.port);
    c.send(get("/playlist.m3u8"));
    auto plain = c.read_response();
    CHECK(plain.body == big);
    CHECK(plain.header("vary") == "Accept-Encoding");
    CHECK(plain.header("content-encoding").empty());

    c.send(get("/playlist.m3u8", "Accept-Encoding: gzip, br\r\n"));
    auto zipped = c.read_response();
    CHECK(zipped.header("content-encoding") == "gzip");
    CHECK(zipped.body.size() < big.size());
    CHECK(gzip_decompress(zipped.body, 1 << 20) == big);

    c.send("HEAD /playlist.m3u8 HTTP/1.1\r\nHost: t\r\n\r\n");
    auto head = c.read_response(true);
    CHECK(head.status == 200);
    CHECK(head.header("content-length") == std::to_string(big.size()));

    c.send(get("/part.m4s", "Accept-Encoding: gzip\r\n"));
    auto media = c.read_response();
    CHECK(media.body.size() == 5000);
    CHECK(media.header("content-encoding").empty());
    // The connection is still usable after the HEAD: no body bytes were sent for it.
    c.send(get("/playlist.m3u8"));
    CHECK(c.read_response().body == big);
  });
  CHECK(h.finish() == 0);
}

TEST_CASE("a shared body larger than the socket buffer goes out whole, held until written") {
  Harness h;
  // Distinct bytes at every offset, so a slice sent twice or skipped shows. Three times Linux's
  // largest default send buffer (tcp_wmem 4 MiB), so that most of it must wait in a queued write.
  std::vector<uint8_t> pattern(12 * 1024 * 1024);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>((i * 131) >> 3);
  std::weak_ptr<const std::vector<uint8_t>> sent;
  REQUIRE(h.router.add("GET", "/seg.m4s", [&](const Request&, ExchangePtr ex) {
    auto body = std::make_shared<const std::vector<uint8_t>>(pattern);
    sent = body;
    // The handler keeps no reference: only the queued write can keep the bytes alive.
    ex->respond(Response::bytes(200, std::move(body), "video/iso.segment"));
  }));
  h.start();
  h.run([&] {
    Client c(h.port, 16 * 1024);
    c.send(get("/seg.m4s"));
    // Far more than the socket buffers hold is still waiting in the server.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK_FALSE(sent.expired());
    auto r = c.read_response();
    CHECK(r.status == 200);
    CHECK(r.header("content-length") == std::to_string(pattern.size()));
    REQUIRE(r.body.size() == pattern.size());
    CHECK(std::memcmp(r.body.data(), pattern.data(), pattern.size()) == 0);
  });
  // Written, the server holds no reference to the body.
  CHECK(sent.expired());
  CHECK(h.finish() == 0);
}

TEST_CASE("pipelined media requests to a slow reader arrive whole and in order") {
  Harness h;
  std::vector<SharedBytes> bodies;
  for (int i = 0; i < 3; ++i) {
    std::vector<uint8_t> b(700 * 1024 + static_cast<size_t>(i) * 4099);
    for (size_t j = 0; j < b.size(); ++j) b[j] = static_cast<uint8_t>(j * (i + 3) + i);
    bodies.push_back(std::make_shared<const std::vector<uint8_t>>(std::move(b)));
  }
  REQUIRE(h.router.add("GET", "/part/{n}", [&](const Request& req, ExchangePtr ex) {
    size_t n = std::stoul(std::string(req.param("n")));
    if (n >= bodies.size()) {
      ex->respond(Response::empty(404));
      return;
    }
    ex->respond(Response::bytes(200, bodies[n], "video/iso.segment"));
  }));
  h.start();
  h.run([&] {
    Client c(h.port, 8 * 1024);
    c.send(get("/part/0") + get("/part/1") + get("/part/9") + get("/part/2") + get("/part/1"));
    for (int n : {0, 1, 9, 2, 1}) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      auto r = c.read_response();
      REQUIRE(r.ok);
      if (n == 9) {
        CHECK(r.status == 404);
        continue;
      }
      CHECK(r.status == 200);
      const auto& want = *bodies[static_cast<size_t>(n)];
      REQUIRE(r.body.size() == want.size());
      CHECK(std::memcmp(r.body.data(), want.data(), want.size()) == 0);
    }
  });
  // The counters are cached per route, method and status: each pair still counts on its own.
  std::string text = h.metrics.render();
  CHECK(text.find(
            "hawker_http_requests_total{route=\"/part/{n}\",method=\"GET\",status=\"200\"} 4") !=
        std::string::npos);
  CHECK(text.find(
            "hawker_http_requests_total{route=\"/part/{n}\",method=\"GET\",status=\"404\"} 1") !=
        std::string::npos);
  CHECK(text.find("hawker_http_request_duration_seconds_count{route=\"/part/{n}\"} 5") !=
        std::string::npos);
  CHECK(h.finish() == 0);
}

TEST_CASE("a sealed body goes out with sendfile, whole, also to a slow reader or one that leaves") {
  Harness h;
  std::vector<uint8_t> pattern(2 * 1024 * 1024 + 17);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>((i * 31) >> 2);
  auto sealed = SealedBytes::copy_of(pattern);
  REQUIRE(sealed->fd() >= 0);
  REQUIRE(h.router.add("GET", "/seg.m4s", [&](const Request&, ExchangePtr ex) {
    ex->respond(Response::sealed(200, sealed, "video/iso.segment"));
  }));
  REQUIRE(h.router.add("GET", "/ping", [](const Request&, ExchangePtr ex) {
    ex->respond(Response::text(200, "pong"));
  }));
  h.start();
  h.run([&] {
    {
      // Leaves with most of the body unsent: the server must fail that send, not die of SIGPIPE.
      Client quitter(h.port, 8 * 1024);
      quitter.send(get("/seg.m4s"));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    Client c(h.port, 16 * 1024);
    // Two sealed answers and a text answer pipelined: each must follow the one before whole,
    // however much of it sendfile took at once and however much was queued.
    c.send(get("/seg.m4s") + get("/ping") + get("/seg.m4s"));
    for (int i = 0; i < 3; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      auto r = c.read_response();
      REQUIRE(r.ok);
      CHECK(r.status == 200);
      if (i == 1) {
        CHECK(r.body == "pong");
        continue;
      }
      CHECK(r.header("content-type") == "video/iso.segment");
      REQUIRE(r.body.size() == pattern.size());
      CHECK(std::memcmp(r.body.data(), pattern.data(), pattern.size()) == 0);
    }
    c.send("HEAD /seg.m4s HTTP/1.1\r\nHost: t\r\n\r\n");
    auto head = c.read_response(true);
    CHECK(head.header("content-length") == std::to_string(pattern.size()));
    c.send(get("/ping"));
    CHECK(c.read_response().body == "pong");
  });
  CHECK(h.finish() == 0);
}

TEST_CASE("CORS: preflight answered by the server, allowed origins echoed") {
  Harness h;
  h.cors.allowed_origins = {"https://shop.example"};
  REQUIRE(h.router.add("POST", "/api/orders", [](const Request&, ExchangePtr ex) {
    ex->respond(Response::json(201, {{"ok", true}}));
  }));
  h.start();
  h.run([&] {
    Client c(h.port);
    c.send(
        "OPTIONS /api/orders HTTP/1.1\r\nHost: t\r\nOrigin: https://shop.example\r\n"
        "Access-Control-Request-Method: POST\r\n"
        "Access-Control-Request-Headers: content-type, idempotency-key\r\n\r\n");
    auto pre = c.read_response();
    CHECK(pre.status == 204);
    CHECK(pre.header("access-control-allow-origin") == "https://shop.example");
    CHECK(pre.header("access-control-allow-methods") == "OPTIONS, POST");
    CHECK(pre.header("access-control-allow-headers") == "content-type, idempotency-key");
    CHECK(pre.header("vary") == "Origin");

    c.send(
        "POST /api/orders HTTP/1.1\r\nHost: t\r\nOrigin: https://shop.example\r\n"
        "Content-Length: 2\r\n\r\n{}");
    auto r = c.read_response();
    CHECK(r.status == 201);
    CHECK(r.header("access-control-allow-origin") == "https://shop.example");

    c.send(
        "POST /api/orders HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.example\r\n"
        "Content-Length: 2\r\n\r\n{}");
    r = c.read_response();
    CHECK(r.header("access-control-allow-origin").empty());

    c.send("OPTIONS /api/orders HTTP/1.1\r\nHost: t\r\n\r\n");
    auto plain = c.read_response();
    CHECK(plain.status == 204);
    CHECK(plain.header("allow") == "OPTIONS, POST");
  });
  CHECK(h.finish() == 0);
}

TEST_CASE("a held request learns that its client left") {
  Harness h;
  ExchangePtr held;
  bool aborted = false;
  std::atomic<bool> arrived{false};
  REQUIRE(h.router.add("GET", "/hold", [&](const Request&, ExchangePtr ex) {
    ex->on_abort([&] { aborted = true; });
    held = ex;
    arrived = true;
  }));
  h.start();
  h.run(
      [&] {
        {
          Client c(h.port);
          c.send(get("/hold"));
          while (!arrived) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      },
      [&] {
        CHECK(aborted);
        // Answering after the client left does nothing.
        held->respond(Response::text(200, "too late"));
        held.reset();
      });
  CHECK(h.finish() == 0);
}

TEST_CASE("shutdown lets an in-flight request finish and closes idle connections") {
  Harness h;
  Timer& late = h.make_timer();
  REQUIRE(h.router.add("GET", "/slow", [&](const Request&, ExchangePtr ex) {
    late.start(100, 0, [ex] { ex->respond(Response::text(200, "done")); });
  }));
  h.start();
  std::atomic<bool> finished{false};
  std::thread client([&] {
    Client idle(h.port);
    Client busy(h.port);
    busy.send(get("/slow"));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    h.mailbox->post([&] {
      CHECK(h.server->open_connections() == 2);
      h.server->shutdown(2000, [&] {
        finished = true;
        h.mailbox->close();
      });
    });
    auto r = busy.read_response();
    CHECK(r.status == 200);
    CHECK(r.body == "done");
    CHECK(r.header("connection") == "close");
    CHECK(idle.closed_by_peer());
    CHECK(busy.closed_by_peer());
  });
  h.loop.run();
  client.join();
  CHECK(finished);
  CHECK(h.finish() == 0);
}

TEST_CASE("an SSE reader that never reads is cut off at the cap; others still get answers") {
  Harness h;
  h.limits.max_output_buffer = 64 * 1024;
  StreamWriterPtr stream;
  bool stream_closed = false;
  bool saw_backpressure = false;
  Timer& pump = h.make_timer();
  std::atomic<bool> cut{false};
  REQUIRE(h.router.add("GET", "/events", [&](const Request&, ExchangePtr ex) {
    stream = ex->start_stream(200, sse_headers());
    stream->on_close([&] {
      stream_closed = true;
      cut = true;
      pump.stop();
    });
    std::string payload(8 * 1024, 'x');
    int id = 0;
    pump.start(1, 1, [&, payload]() mutable {
      for (int i = 0; i < 8 && stream && !stream->closed(); ++i) {
        if (!stream->write(format_sse(SseEvent{std::to_string(++id), "tick", payload, {}}))) {
          saw_backpressure = true;
        }
      }
    });
  }));
  REQUIRE(h.router.add("GET", "/ping", [](const Request&, ExchangePtr ex) {
    ex->respond(Response::text(200, "pong"));
  }));
  h.start();
  h.run(
      [&] {
        Client sleeper(h.port, 4096);
        sleeper.send(get("/events"));
        Client other(h.port);
        for (int i = 0; i < 50 && !cut; ++i) {
          other.send(get("/ping"));
          CHECK(other.read_response().body == "pong");
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        CHECK(cut);
        other.send(get("/ping"));
        CHECK(other.read_response().body == "pong");
      },
      [&] { stream.reset(); });
  CHECK(stream_closed);
  CHECK(saw_backpressure);
  CHECK(h.finish() == 0);
}

TEST_CASE("an SSE stream delivers events and ends cleanly on close") {
  Harness h;
  REQUIRE(h.router.add("GET", "/events", [&](const Request& req, ExchangePtr ex) {
    auto s = ex->start_stream(200, sse_headers());
    s->write(
        format_sse(SseEvent{"1", "", "resumed after " + last_event_id(req).value_or("-"), {}}));
    s->write(format_sse_comment("keep-alive"));
    s->close();
  }));
  h.start();
  h.run([&] {
    Client c(h.port);
    c.send(get("/events", "Last-Event-ID: 41\r\n"));
    auto r = c.read_response();
    CHECK(r.status == 200);
    CHECK(r.header("content-type") == "text/event-stream; charset=utf-8");
    CHECK(r.body == "id: 1\ndata: resumed after 41\n\n: keep-alive\n\n");
    // After a closed stream the connection serves the next request.
    c.send(get("/events"));
    CHECK(c.read_response().ok);
  });
  CHECK(h.finish() == 0);
}

TEST_CASE("a stream writer that respects backpressure gets on_drain and loses nothing") {
  Harness h;
  h.limits.max_output_buffer = 64 * 1024;
  constexpr int kEvents = 200;
  int drains = 0;
  int next = 0;
  StreamWriterPtr stream;
  std::function<void()> pump;
  REQUIRE(h.router.add("GET", "/events", [&](const Request&, ExchangePtr ex) {
    stream = ex->start_stream(200, sse_headers());
    pump = [&] {
      while (next < kEvents) {
        bool more = stream->write(
            format_sse(SseEvent{std::to_string(next++), "", std::string(4000, 'y'), {}}));
        if (!more) {
          stream->on_drain([&] {
            ++drains;
            pump();
          });
          return;
        }
      }
      stream->close();
    };
    pump();
  }));
  h.start();
  h.run(
      [&] {
        Client c(h.port);
        c.send(get("/events"));
        auto r = c.read_response();
        CHECK(r.status == 200);
        size_t count = 0;
        size_t pos = 0;
        while ((pos = r.body.find("\n\n", pos)) != std::string::npos) {
          ++count;
          pos += 2;
        }
        CHECK(count == kEvents);
        CHECK(r.body.find("id: 199\n") != std::string::npos);
      },
      [&] {
        stream.reset();
        pump = nullptr;
      });
  CHECK(drains > 0);
  CHECK(h.finish() == 0);
}

TEST_CASE("connections past the limit are refused; Expect: 100-continue is honoured") {
  Harness h;
  h.limits.max_connections = 1;
  REQUIRE(h.router.add("POST", "/echo", [](const Request& req, ExchangePtr ex) {
    ex->respond(Response::text(201, req.body));
  }));
  REQUIRE(h.router.add("GET", "/metrics", metrics_handler(h.metrics)));
  h.start();
  h.run([&] {
    Client first(h.port);
    first.send(
        "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    auto cont = first.read_response(true);
    CHECK(cont.status == 100);
    first.send("body");
    auto r = first.read_response();
    CHECK(r.status == 201);
    CHECK(r.body == "body");

    Client second(h.port);
    CHECK(second.closed_by_peer());

    first.send(get("/metrics"));
    auto m = first.read_response();
    CHECK(m.header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(m.body.find("hawker_http_rejected_connections_total 1") != std::string::npos);
    CHECK(m.body.find("process_resident_memory_bytes") != std::string::npos);
  });
  CHECK(h.finish() == 0);
}

namespace {

size_t collect_body(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct ChunkSource {
  std::string data;
  size_t offset = 0;
};

size_t read_source(char* buffer, size_t size, size_t n, void* in) {
  auto* src = static_cast<ChunkSource*>(in);
  // Small reads make libcurl send several chunks.
  size_t len = std::min({size * n, src->data.size() - src->offset, size_t{700}});
  std::memcpy(buffer, src->data.data() + src->offset, len);
  src->offset += len;
  return len;
}

}  // namespace

TEST_CASE("libcurl as a real client: gzip, chunked upload and connection reuse") {
  Harness h;
  std::string big;
  for (int i = 0; i < 300; ++i) big += fmt::format("{{\"sku\":\"s{}\",\"stock\":{}}}\n", i, i * 3);
  REQUIRE(h.router.add("GET", "/api/stock", [&](const Request&, ExchangePtr ex) {
    ex->respond(Response::text(200, big, "application/json"));
  }));
  REQUIRE(h.router.add("POST", "/api/echo", [](const Request& req, ExchangePtr ex) {
    ex->respond(Response::text(200, req.body));
  }));
  h.start();
  h.run([&] {
    CURL* curl = curl_easy_init();
    std::string body;
    std::string base = fmt::format("http://127.0.0.1:{}", h.port);
    curl_easy_setopt(curl, CURLOPT_URL, (base + "/api/stock").c_str());
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "gzip");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    CHECK(curl_easy_perform(curl) == CURLE_OK);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    CHECK(status == 200);
    CHECK(body == big);
    curl_off_t downloaded = 0;
    curl_easy_getinfo(curl, CURLINFO_SIZE_DOWNLOAD_T, &downloaded);
    CHECK(downloaded < static_cast<curl_off_t>(big.size()) / 3);

    ChunkSource src{std::string(5000, 'z') + "end", 0};
    body.clear();
    curl_slist* headers = curl_slist_append(nullptr, "Transfer-Encoding: chunked");
    curl_easy_setopt(curl, CURLOPT_URL, (base + "/api/echo").c_str());
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_source);
    curl_easy_setopt(curl, CURLOPT_READDATA, &src);
    CHECK(curl_easy_perform(curl) == CURLE_OK);
    CHECK(body == src.data);
    long connects = -1;
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
    CHECK(connects == 0);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
  });
  CHECK(h.finish() == 0);
}

TEST_CASE("an HTTP/1.0 client gets a stream delimited by the connection's end") {
  Harness h;
  REQUIRE(h.router.add("GET", "/events", [&](const Request&, ExchangePtr ex) {
    auto s = ex->start_stream(200, sse_headers());
    s->write(format_sse(SseEvent{"7", "", "one", {}}));
    s->write(format_sse(SseEvent{"8", "", "two", {}}));
    s->close();
  }));
  h.start();
  h.run([&] {
    Client c(h.port);
    c.send("GET /events HTTP/1.0\r\n\r\n");
    auto head = c.read_response(true);
    CHECK(head.status == 200);
    CHECK(head.header("transfer-encoding").empty());
    CHECK(head.header("connection") == "close");
    CHECK(c.read_until("id: 7\ndata: one\n\nid: 8\ndata: two\n\n"));
    CHECK(c.closed_by_peer());
  });
  CHECK(h.finish() == 0);
}
