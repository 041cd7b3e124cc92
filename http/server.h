#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/loop.h"
#include "core/metrics.h"
#include "core/result.h"
#include "http/router.h"

namespace hawker::http {

/// Every bound a connection is held to. A client that breaks one gets a problem+json answer
/// (where HTTP has one) and loses its connection; nobody else notices.
struct ServerLimits {
  /// Request line plus header fields (414/431 beyond).
  size_t max_header_bytes = 16 * 1024;
  /// Request body (413 beyond).
  size_t max_body_bytes = 1024 * 1024;
  /// From a request's first byte to the end of its headers (408 beyond).
  uint64_t header_timeout_ms = 10'000;
  /// From the end of the headers to the end of the body (408 beyond).
  uint64_t body_timeout_ms = 30'000;
  /// A keep-alive connection with nothing in flight is closed after this.
  uint64_t idle_timeout_ms = 60'000;
  /// Connections past this are accepted and closed at once.
  size_t max_connections = 10'000;
  /// Parsed requests waiting for their answers on one connection; reading pauses at this.
  size_t max_pipelined = 16;
  /// Unsent stream bytes one connection may hold before it is closed.
  size_t max_output_buffer = 1024 * 1024;
  /// After a final response (error or Connection: close), unread input is drained this long so
  /// the kernel does not reset the connection before the client reads the answer.
  uint64_t linger_ms = 2'000;
};

/// Which browser origins may read responses (Fetch standard, CORS protocol).
struct CorsPolicy {
  /// Allowed origins ("https://shop.example"); "*" allows any. Empty disables CORS headers.
  std::vector<std::string> allowed_origins = {"*"};
  std::string allowed_methods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
  std::string allowed_headers = "Content-Type, Authorization, Idempotency-Key, Last-Event-ID";
  std::string exposed_headers = "ETag, Location, Retry-After";
  int max_age_seconds = 600;

  /// The Access-Control-Allow-Origin value for a request from `origin`, or empty if refused.
  std::string allow_origin_for(std::string_view origin) const;
};

class Connection;

/// HTTP/1.1 server on the loop: keep-alive, pipelining (answers in request order), chunked
/// request bodies, HEAD, OPTIONS and CORS preflight, gzip for text, streaming responses and
/// graceful shutdown. Loop thread only.
class Server {
 public:
  Server(Loop& loop, Router& router, ServerLimits limits, Metrics& metrics, CorsPolicy cors = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds and listens; returns the bound port (useful with port 0).
  Result<int> listen(std::string host, int port);
  /// Closes the listening socket; open connections go on.
  void stop_accepting();
  /// Stops accepting, closes idle connections, ends streams, lets in-flight requests finish
  /// (their connections close after the answer) and force-closes whatever is left at the
  /// deadline; then calls `done` once, from the loop.
  void shutdown(uint64_t deadline_ms, std::function<void()> done);
  size_t open_connections() const { return connections_.size(); }

  const ServerLimits& limits() const { return limits_; }
  const CorsPolicy& cors() const { return cors_; }
  const Router& router() const { return router_; }
  Loop& loop() { return loop_; }
  bool draining() const { return draining_; }

  // Used by connections.
  struct Instruments {
    Family<Counter>* requests;
    Family<Histogram>* duration;
    Gauge* open_connections;
    Counter* bytes_sent;
    Counter* rejected_connections;
    Counter* protocol_errors;
  };
  Instruments& instruments() { return instruments_; }
  /// A route's request counters and duration histogram, looked up in the metric families once:
  /// a family lookup takes a lock and builds label strings, too much for every media request.
  struct RouteInstruments {
    std::string route;
    Family<Counter>* family = nullptr;
    Histogram* duration = nullptr;
    struct ByMethodStatus {
      std::string_view method;  ///< a static method label
      int status = 0;
      Counter* counter = nullptr;
    };
    /// The few (method, status) pairs a route answers with, found by a linear scan.
    std::vector<ByMethodStatus> by_method_status;
    /// The counter for `method` (a static label that outlives the server) and `status`.
    Counter& requests(std::string_view method, int status);
  };
  /// Routes are a bounded set (patterns, "unmatched", "unparsed", "OPTIONS"), so is this cache.
  RouteInstruments& route_instruments(std::string_view route);
  void connection_closed(Connection* connection);

 private:
  void on_connection(int status);
  void maybe_finish_shutdown();

  Loop& loop_;
  Router& router_;
  ServerLimits limits_;
  CorsPolicy cors_;
  Instruments instruments_;
  UvPtr<uv_tcp_t> listener_;
  uint64_t next_connection_id_ = 1;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
  struct RouteHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::unique_ptr<RouteInstruments>, RouteHash, std::equal_to<>>
      routes_;
  bool draining_ = false;
  std::function<void()> shutdown_done_;
  Timer shutdown_timer_;
};

/// Serves `metrics` in the Prometheus text format (refreshing the process_* figures first when
/// `include_process`), for a route such as "/metrics".
Handler metrics_handler(Metrics& metrics, bool include_process = true);

}  // namespace hawker::http
