#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "http/request.h"
#include "http/response.h"

namespace hawker::http {

class Exchange;
class StreamWriter;
using ExchangePtr = std::shared_ptr<Exchange>;
using StreamWriterPtr = std::shared_ptr<StreamWriter>;

/// What an Exchange reports to: the connection in the server, a recorder in tests.
class ExchangeSink {
 public:
  virtual ~ExchangeSink() = default;
  /// The exchange has a response, started a stream, queued stream bytes or closed its stream.
  virtual void exchange_updated(Exchange& exchange) = 0;
};

/// Limits a stream is held to; set by the server from ServerLimits.
struct StreamLimits {
  /// Buffered bytes beyond this close the stream and its connection: a reader that stops
  /// reading never makes the server hold more.
  size_t max_buffered = 1024 * 1024;
  /// write() returns false at or above this, and on_drain fires once buffered() is below it.
  size_t high_water = 256 * 1024;
};

/// A chunked response body written over time (Server-Sent Events). Loop thread only.
class StreamWriter {
 public:
  StreamWriter(Exchange* exchange, StreamLimits limits) : exchange_(exchange), limits_(limits) {}

  /// Queues `chunk` (sent with chunked framing to HTTP/1.1 clients). Returns false when the chunk
  /// was refused (stream closed) or when the buffer reached its high-water mark: wait for on_drain
  /// before writing more. Past max_buffered the server closes the stream.
  bool write(std::string chunk);
  /// Bytes queued and not yet handed to the kernel.
  size_t buffered() const { return pending_bytes_ + in_flight_bytes_; }
  /// Called once, after a write returned false, when buffered() falls below the high-water mark.
  void on_drain(std::function<void()> cb) { drain_cb_ = std::move(cb); }
  /// Ends the stream (the terminating chunk is sent) and lets the connection go on.
  void close();
  /// Called once when the stream ends, by close() or because the client went away.
  void on_close(std::function<void()> cb) { close_cb_ = std::move(cb); }
  bool closed() const { return closed_; }

  // Server side.
  /// Takes the queued bytes, to be framed and written.
  std::string take_pending();
  void wrote(size_t bytes) { in_flight_bytes_ += bytes; }
  void write_done(size_t bytes);
  /// Ends the stream without the terminating chunk (client gone or buffer cap broken).
  void abort();
  bool over_cap() const { return buffered() > limits_.max_buffered; }
  /// The exchange is gone; later writes are refused.
  void detach() { exchange_ = nullptr; }

 private:
  void fire_close();

  Exchange* exchange_;
  StreamLimits limits_;
  std::string pending_;
  size_t pending_bytes_ = 0;
  size_t in_flight_bytes_ = 0;
  bool closed_ = false;
  bool close_fired_ = false;
  bool want_drain_ = false;
  std::function<void()> drain_cb_;
  std::function<void()> close_cb_;
};

/// One request and its eventual answer. The handler may keep the ExchangePtr and answer later
/// from the loop thread; if the client left by then, respond() does nothing. The Request lives
/// as long as the Exchange, so a handler that keeps the Exchange may keep the Request reference.
class Exchange {
 public:
  enum class State { kWaiting, kResponded, kStreaming, kFinished };

  Exchange(ExchangeSink* sink, Request request, StreamLimits stream_limits = {});
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  const Request& request() const { return request_; }
  Request& mutable_request() { return request_; }

  /// Answers the request. Only the first answer counts; later calls, and calls after the client
  /// left, do nothing.
  void respond(Response response);
  /// Called once if the client goes away before the answer was sent (a held playlist request
  /// drops its waiter here).
  void on_abort(std::function<void()> cb) { abort_cb_ = std::move(cb); }
  /// Sends status and headers now and keeps the response open for chunks. Returns null when the
  /// exchange was already answered or the client left.
  StreamWriterPtr start_stream(int status, Headers headers);

  bool aborted() const { return aborted_; }
  State state() const { return state_; }

  // Server side.
  /// The response set by respond() or start_stream() (a stream's has no body), once.
  std::optional<Response> take_response();
  const StreamWriterPtr& stream() const { return stream_; }
  /// The client went away: fires on_abort (if unanswered) and ends any stream.
  void abort();
  /// The answer is fully written; the exchange reports nothing more.
  void set_finished() {
    state_ = State::kFinished;
    sink_ = nullptr;
  }
  /// Called by the stream when it has news for the sink.
  void notify();

 private:
  ExchangeSink* sink_;
  Request request_;
  StreamLimits stream_limits_;
  State state_ = State::kWaiting;
  bool aborted_ = false;
  std::optional<Response> response_;
  StreamWriterPtr stream_;
  std::function<void()> abort_cb_;
};

}  // namespace hawker::http
