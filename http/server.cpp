#include "http/server.h"

#include <fmt/format.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <ctime>
#include <deque>
#include <exception>

#include "core/log.h"
#include "http/gzip.h"
#include "http/parser.h"

namespace hawker::http {

namespace {

constexpr size_t kGzipMinBytes = 256;
constexpr size_t kReadBufferBytes = 64 * 1024;
constexpr std::string_view kComponent = "http";

// Where every connection of this thread's loop reads into. A read's bytes are copied into the
// connection's input at once (on_read), so one buffer serves them all: a keep-alive
// connection holds no 64 KiB of its own, and a thousand of them arriving at once (a flash
// sale's first second) do not make the process grow by 64 MiB.
char* shared_read_buffer() {
  static thread_local std::unique_ptr<char[]> buffer;
  if (!buffer) buffer = std::make_unique<char[]>(kReadBufferBytes);
  return buffer.get();
}

// The whole "Date: <RFC 9110 IMF-fixdate>\r\n" line, rebuilt at most once a second.
const std::string& date_line() {
  static thread_local std::time_t cached_at = 0;
  static thread_local std::string cached;
  std::time_t now = std::time(nullptr);
  if (now != cached_at) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    std::strftime(buf, sizeof(buf), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    cached = buf;
    cached_at = now;
  }
  return cached;
}

void append_decimal(std::string& out, uint64_t value) {
  char digits[20];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), value);
  out.append(digits, end);
}

// Bounds the label set of the request counter: unknown methods share one label.
std::string_view method_label(std::string_view method) {
  for (std::string_view m : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    if (method == m) return m;
  }
  return "OTHER";
}

// Headers the server writes itself; a handler's copies are dropped.
/// Whether `text` holds CR or LF (or, with `colon`, ':'): a handler's header holding one could
/// write a second response. One pass; find_first_of looks the set up once per byte.
bool breaks_header(std::string_view text, bool colon) {
  for (char c : text) {
    if (c == '\r' || c == '\n' || (colon && c == ':')) return true;
  }
  return false;
}

bool server_owned(std::string_view name) {
  return iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") ||
         iequals(name, "Connection") || iequals(name, "Date") || iequals(name, "Keep-Alive");
}

std::string peer_name(uv_tcp_t* tcp) {
  sockaddr_storage addr{};
  int len = sizeof(addr);
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "unknown";
  char ip[INET6_ADDRSTRLEN] = {0};
  if (addr.ss_family == AF_INET6) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
    uv_ip6_name(a6, ip, sizeof(ip));
    return fmt::format("[{}]:{}", ip, ntohs(a6->sin6_port));
  }
  auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
  uv_ip4_name(a4, ip, sizeof(ip));
  return fmt::format("{}:{}", ip, ntohs(a4->sin_port));
}

}  // namespace

std::string CorsPolicy::allow_origin_for(std::string_view origin) const {
  for (const auto& o : allowed_origins) {
    if (o == "*") return "*";
    if (iequals(o, origin)) return std::string(origin);
  }
  return {};
}

/// One client connection: reads, parses, dispatches, and writes answers in request order.
class Connection final : public ExchangeSink {
 public:
  enum class State {
    kOpen,       // reading and answering requests
    kFinishing,  // no more requests: answer those in flight, then shut down writes
    kLingering,  // write side shut; draining unread input before closing
    kClosing,    // handles closing; freed in the last close callback
  };

  Connection(Server* server, uint64_t id) : server_(server), id_(id), parser_(parser_limits()) {
    uv_tcp_init(server->loop().uv(), &tcp_);
    uv_timer_init(server->loop().uv(), &timer_);
    tcp_.data = this;
    timer_.data = this;
  }

  uv_tcp_t* tcp() { return &tcp_; }
  uint64_t id() const { return id_; }
  void detach_server() { server_ = nullptr; }

  void start() {
    remote_ = peer_name(&tcp_);
    uv_tcp_nodelay(&tcp_, 1);
    start_reading();
    update_timer();
    read_now();
  }

  /// A client sends its request as soon as it has connected, and under a burst of connections
  /// (a flash sale's first second) libuv accepts every waiting one before it polls any for
  /// reading. One read right after the accept lets the first requests go on to their handlers
  /// (and orders to the storage thread) while the rest are still being accepted. Nothing there
  /// yet, an error or the end of the stream: the poll that follows sees it as it would have.
  void read_now() {
    uv_os_fd_t fd;
    if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd) != 0) return;
    char* buffer = shared_read_buffer();
    ssize_t n = ::recv(fd, buffer, kReadBufferBytes, MSG_DONTWAIT);
    if (n <= 0) return;
    uv_buf_t buf = uv_buf_init(buffer, static_cast<unsigned int>(n));
    on_read(n, &buf);
  }

  /// Stops taking requests: idle connections close now, busy ones after their answers, and
  /// streams end cleanly so their clients reconnect elsewhere.
  void drain() {
    if (state_ != State::kOpen) return;
    if (pending_.empty()) {
      // A request whose head arrived and whose body is still coming is in flight: let it
      // finish (the body timeout still bounds it); its answer closes the connection.
      if (parser_.phase() == ParsePhase::kBody) return;
      close_now();
      return;
    }
    state_ = State::kFinishing;
    stop_reading();
    // Copies: closing a stream re-enters flush(), which pops finished exchanges.
    std::vector<StreamWriterPtr> streams;
    for (auto& p : pending_) {
      if (p.exchange->stream()) streams.push_back(p.exchange->stream());
    }
    for (auto& s : streams) s->close();
    flush();
  }

  void close_now() {
    if (state_ == State::kClosing) return;
    state_ = State::kClosing;
    // Moved out first: abort callbacks run handler code that must not see a half-torn queue.
    std::deque<Pending> pending;
    pending.swap(pending_);
    for (auto& p : pending) p.exchange->abort();
    uv_timer_stop(&timer_);
    auto on_closed = [](uv_handle_t* h) {
      auto* self = static_cast<Connection*>(h->data);
      if (--self->open_handles_ == 0) self->finish_close();
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_closed);
  }

  void exchange_updated(Exchange& exchange) override {
    if (state_ == State::kClosing) return;
    const auto& stream = exchange.stream();
    if (stream && stream->over_cap()) {
      log::warn(kComponent, "conn={} remote={} stream buffer over {} bytes; closing slow reader",
                id_, remote_, server_->limits().max_output_buffer);
      close_now();
      return;
    }
    flush();
  }

 private:
  struct Pending {
    ExchangePtr exchange;
    /// The method's metric label (static text).
    std::string_view method;
    bool head = false;
    bool keep_alive = true;
    bool gzip = false;
    std::string origin;
    uint64_t started_ms = 0;
    bool head_written = false;
    bool chunked = false;
    int status = 0;
  };

  struct WriteOp {
    uv_write_t req;
    Connection* connection;
    std::string head;
    std::string owned;
    /// Keeps a shared body alive until the kernel has it.
    std::shared_ptr<const void> keep;
    StreamWriterPtr stream;
    /// Bytes of this op that belong to `stream`.
    size_t size = 0;
    /// All bytes of this op.
    size_t total = 0;
  };

  enum class TimerKind { kNone, kIdle, kHeaders, kBody, kLinger };

  ParserLimits parser_limits() const {
    return ParserLimits{server_->limits().max_header_bytes, server_->limits().max_body_bytes};
  }

  void finish_close() {
    // The last close callback: nothing of this connection runs after this.
    if (server_ != nullptr) {
      server_->connection_closed(this);
    } else {
      delete this;
    }
  }

  void start_reading() {
    if (reading_) return;
    reading_ = true;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&tcp_),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
          buf->base = shared_read_buffer();
          buf->len = kReadBufferBytes;
        },
        [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
          static_cast<Connection*>(s->data)->on_read(nread, buf);
        });
  }

  void stop_reading() {
    if (!reading_) return;
    reading_ = false;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  }

  void on_read(ssize_t nread, const uv_buf_t* buf) {
    if (state_ == State::kClosing) return;
    if (nread < 0) {
      if (nread != UV_EOF && state_ != State::kLingering) {
        log::debug(kComponent, "conn={} remote={} read: {}", id_, remote_,
                   uv_strerror(static_cast<int>(nread)));
      }
      close_now();
      return;
    }
    if (nread == 0) return;
    // Once no more requests are taken, input is read only to be thrown away.
    if (state_ != State::kOpen) return;
    inbuf_.append(buf->base, static_cast<size_t>(nread));
    process_input();
  }

  /// Reading pauses while answers pile up: too many queued requests or too many unsent bytes
  /// (a client pipelining requests for media parts and never reading them).
  bool can_take_request() const {
    return pending_.size() < server_->limits().max_pipelined &&
           queued_bytes_ < server_->limits().max_output_buffer;
  }

  void resume_input() {
    if (state_ != State::kOpen) return;
    if (!processing_ && !inbuf_.empty() && can_take_request()) process_input();
    if (state_ != State::kOpen) return;
    if (can_take_request()) start_reading();
    update_timer();
  }

  void process_input() {
    if (processing_) return;
    processing_ = true;
    while (state_ == State::kOpen && !inbuf_.empty() && can_take_request()) {
      auto outcome = parser_.feed(
          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(inbuf_.data()), inbuf_.size()));
      inbuf_.erase(0, outcome.consumed);
      if (outcome.error) {
        reject(*outcome.error);
        break;
      }
      if (!outcome.request) break;
      start_exchange(std::move(*outcome.request));
    }
    processing_ = false;
    if (state_ != State::kOpen) return;
    if (can_take_request()) {
      start_reading();
    } else {
      stop_reading();
    }
    if (parser_.take_expect_continue() && pending_.empty()) {
      write_raw("HTTP/1.1 100 Continue\r\n\r\n");
    }
    update_timer();
  }

  void start_exchange(Request request) {
    request.remote = remote_;
    request.connection_id = id_;
    Pending p;
    p.method = method_label(request.method);
    p.head = request.method == "HEAD";
    p.keep_alive = request.keep_alive && !server_->draining();
    if (auto ae = request.header("Accept-Encoding")) p.gzip = accepts_gzip(*ae);
    if (auto origin = request.header("Origin")) p.origin = std::string(*origin);
    p.started_ms = uv_now(server_->loop().uv());
    StreamLimits stream_limits{server_->limits().max_output_buffer,
                               server_->limits().max_output_buffer / 2};
    p.exchange = std::make_shared<Exchange>(this, std::move(request), stream_limits);
    ExchangePtr exchange = p.exchange;
    if (!p.keep_alive) {
      state_ = State::kFinishing;
      stop_reading();
    }
    pending_.push_back(std::move(p));
    if (exchange->request().method == "OPTIONS") {
      answer_options(exchange);
      return;
    }
    try {
      server_->router().dispatch(exchange);
    } catch (const std::exception& e) {
      log::error(kComponent, "conn={} remote={} handler for {} {} threw: {}", id_, remote_,
                 exchange->request().method, exchange->request().path, e.what());
      exchange->respond(Response::problem(500, "internal", "Internal server error",
                                          "the server failed to answer this request"));
    }
  }

  void answer_options(const ExchangePtr& exchange) {
    const Request& req = exchange->request();
    exchange->mutable_request().route = "OPTIONS";
    const CorsPolicy& cors = server_->cors();
    auto origin = req.header("Origin");
    auto requested = req.header("Access-Control-Request-Method");
    std::string allow =
        req.raw_path == "*" ? cors.allowed_methods : server_->router().allow_header(req.raw_path);
    if (allow.empty()) {
      exchange->respond(Response::problem(404, "not-found", "Not found",
                                          fmt::format("no resource at {}", req.path)));
      return;
    }
    Response r = Response::empty(204);
    r.headers.set("Allow", allow);
    if (origin && requested) {
      std::string allowed_origin = cors.allow_origin_for(*origin);
      if (!allowed_origin.empty()) {
        r.headers.set("Access-Control-Allow-Methods", allow);
        auto asked = req.header("Access-Control-Request-Headers");
        r.headers.set("Access-Control-Allow-Headers",
                      asked ? std::string(*asked) : cors.allowed_headers);
        r.headers.set("Access-Control-Max-Age", std::to_string(cors.max_age_seconds));
      }
    }
    exchange->respond(std::move(r));
  }

  void reject(const ParseError& error) {
    server_->instruments().protocol_errors->inc();
    log::warn(kComponent, "conn={} remote={} rejected request: {} {}", id_, remote_, error.status,
              error.detail);
    Request request;
    request.method = "UNPARSED";
    request.route = "unparsed";
    request.keep_alive = false;
    start_exchange_with_response(
        std::move(request), Response::problem(error.status, error.slug, error.title, error.detail));
  }

  void start_exchange_with_response(Request request, Response response) {
    request.remote = remote_;
    request.connection_id = id_;
    Pending p;
    p.method = method_label(request.method);
    p.keep_alive = false;
    p.started_ms = uv_now(server_->loop().uv());
    p.exchange = std::make_shared<Exchange>(this, std::move(request));
    ExchangePtr exchange = p.exchange;
    state_ = State::kFinishing;
    stop_reading();
    pending_.push_back(std::move(p));
    exchange->respond(std::move(response));
  }

  void flush() {
    while (!pending_.empty() && state_ != State::kClosing) {
      Pending& front = pending_.front();
      Exchange& ex = *front.exchange;
      if (ex.state() == Exchange::State::kWaiting) break;
      if (ex.state() == Exchange::State::kResponded) {
        auto response = ex.take_response();
        if (response) write_response(front, std::move(*response));
        if (state_ == State::kClosing) return;
        finish_front();
        continue;
      }
      if (ex.state() == Exchange::State::kStreaming) {
        const StreamWriterPtr stream = ex.stream();
        if (!front.head_written) {
          auto response = ex.take_response();
          write_stream_head(front, response ? std::move(*response) : Response::empty(200));
          front.head_written = true;
          if (state_ == State::kClosing) return;
          if (front.head) {
            stream->abort();
            finish_front();
            continue;
          }
        }
        std::string data = stream->take_pending();
        if (!data.empty()) {
          // Everything queued since the last flush goes out as one chunk; the stream is charged
          // for the framing too, since it is buffered like the data.
          if (front.chunked) {
            data = fmt::format("{:x}\r\n{}\r\n", data.size(), data);
          }
          size_t n = data.size();
          stream->wrote(n);
          write_op({}, std::move(data), nullptr, {}, stream, n);
        }
        if (state_ == State::kClosing) return;
        if (stream->over_cap()) {
          log::warn(kComponent,
                    "conn={} remote={} stream buffer over {} bytes; closing slow reader", id_,
                    remote_, server_->limits().max_output_buffer);
          close_now();
          return;
        }
        if (stream->closed()) {
          if (front.chunked) write_raw("0\r\n\r\n");
          if (state_ == State::kClosing) return;
          finish_front();
          continue;
        }
        break;
      }
      break;
    }
    resume_input();
    maybe_shutdown_writes();
  }

  void finish_front() {
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    p.exchange->set_finished();
    const std::string& route = p.exchange->request().route;
    Server::RouteInstruments& inst =
        server_->route_instruments(route.empty() ? std::string_view("unmatched") : route);
    inst.requests(p.method, p.status).inc();
    double seconds = static_cast<double>(uv_now(server_->loop().uv()) - p.started_ms) / 1000.0;
    inst.duration->observe(seconds);
    if (!p.keep_alive && state_ == State::kOpen) {
      state_ = State::kFinishing;
      stop_reading();
    }
  }

  /// Starts head_ afresh with the status line. head_ is reused for every answer, so building a
  /// head allocates nothing once the buffer has grown to fit one.
  void begin_head(int status) {
    head_.clear();
    head_ += "HTTP/1.1 ";
    append_decimal(head_, static_cast<uint64_t>(status));
    head_ += ' ';
    head_ += reason_phrase(status);
    head_ += "\r\n";
  }

  void add_common_headers(std::string& head, const Pending& p, const Response& r) {
    for (const auto& [name, value] : r.headers.fields()) {
      if (server_owned(name)) continue;
      // CR or LF in a handler's header would let it write a second response.
      if (breaks_header(name, true) || breaks_header(value, false)) {
        continue;
      }
      head += name;
      head += ": ";
      head += value;
      head += "\r\n";
    }
    if (!p.origin.empty() && !r.headers.has("Access-Control-Allow-Origin")) {
      std::string allowed = server_->cors().allow_origin_for(p.origin);
      if (!allowed.empty()) {
        head += "Access-Control-Allow-Origin: ";
        head += allowed;
        head += "\r\n";
        if (allowed != "*") head += "Vary: Origin\r\n";
        if (!server_->cors().exposed_headers.empty()) {
          head += "Access-Control-Expose-Headers: ";
          head += server_->cors().exposed_headers;
          head += "\r\n";
        }
      }
    }
    head += date_line();
    bool keep_alive = p.keep_alive && !server_->draining();
    if (!keep_alive) {
      head += "Connection: close\r\n";
    } else if (p.exchange->request().version_minor == 0) {
      // HTTP/1.0 closes by default; keeping it open must be said.
      head += "Connection: keep-alive\r\n";
    }
  }

  void write_response(Pending& p, Response r) {
    p.status = r.status;
    if (!p.keep_alive || server_->draining()) p.keep_alive = false;
    bool no_body = r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200);
    auto content_type = r.headers.get("Content-Type");
    bool compressible = content_type && is_compressible(*content_type) && !no_body;
    if (compressible) {
      auto vary = r.headers.get("Vary");
      if (!vary) {
        r.headers.set("Vary", "Accept-Encoding");
      } else if (vary->find("Accept-Encoding") == std::string_view::npos) {
        r.headers.set("Vary", std::string(*vary) + ", Accept-Encoding");
      }
      if (p.gzip && r.body_size() > kGzipMinBytes && !r.headers.has("Content-Encoding")) {
        auto compressed = gzip_compress(r.body_view());
        if (compressed && compressed->size() < r.body_size()) {
          r.body = std::move(*compressed);
          r.headers.set("Content-Encoding", "gzip");
        }
      }
    }
    begin_head(r.status);
    add_common_headers(head_, p, r);
    if (!no_body) {
      head_ += "Content-Length: ";
      append_decimal(head_, r.body_size());
      head_ += "\r\n";
    }
    head_ += "\r\n";
    if (p.head || no_body) {
      write_op(head_, {}, nullptr, {}, nullptr, 0);
      return;
    }
    // Shared and static bodies go out from where they are: the head and the body are two buffers
    // of one writev, and a queued write holds a reference to a shared body until its callback.
    std::string_view view = r.body_view();
    if (auto* s = std::get_if<std::string>(&r.body)) {
      write_op(head_, std::move(*s), nullptr, {}, nullptr, 0);
    } else if (auto* b = std::get_if<SharedBytes>(&r.body)) {
      write_op(head_, {}, std::move(*b), view, nullptr, 0);
    } else if (auto* t = std::get_if<SharedText>(&r.body)) {
      write_op(head_, {}, std::move(*t), view, nullptr, 0);
    } else if (auto* sealed = std::get_if<SharedSealedBytes>(&r.body)) {
      if (*sealed && (*sealed)->fd() >= 0) {
        send_sealed(head_, std::move(*sealed));
      } else {
        write_op(head_, {}, std::move(*sealed), view, nullptr, 0);
      }
    } else {
      write_op(head_, {}, nullptr, view, nullptr, 0);
    }
  }

  void write_stream_head(Pending& p, Response r) {
    p.status = r.status;
    // HTTP/1.0 has no chunked coding: the stream's end is the connection's end.
    if (p.exchange->request().version_minor == 0) p.keep_alive = false;
    p.chunked = !p.head && p.exchange->request().version_minor >= 1;
    begin_head(r.status);
    add_common_headers(head_, p, r);
    if (p.chunked) head_ += "Transfer-Encoding: chunked\r\n";
    head_ += "\r\n";
    write_op(head_, {}, nullptr, {}, nullptr, 0);
  }

  /// Sends a sealed body with sendfile(2): the kernel takes the memfd's pages into the socket
  /// without a copy, as nginx sends a file from tmpfs, where a write copies every byte into the
  /// socket buffer. The head goes first with MSG_MORE, so that it leaves with the first body
  /// bytes. What the socket does not take at once is queued as an ordinary write from the mapped
  /// bytes, which the op holds; so is everything when other writes are queued, to keep the order.
  void send_sealed(std::string_view head, SharedSealedBytes body) {
    if (state_ == State::kClosing) return;
    size_t head_sent = 0;
    size_t body_sent = 0;
    uv_os_fd_t fd = -1;
    if (queued_bytes_ == 0 && uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) == 0) {
      ssize_t n;
      do {
        n = ::send(fd, head.data(), head.size(), MSG_MORE | MSG_DONTWAIT | MSG_NOSIGNAL);
      } while (n < 0 && errno == EINTR);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        log::debug(kComponent, "conn={} remote={} send: {}", id_, remote_, std::strerror(errno));
        close_now();
        return;
      }
      head_sent = n > 0 ? static_cast<size_t>(n) : 0;
      if (head_sent == head.size()) {
        off_t offset = 0;
        while (static_cast<size_t>(offset) < body->size()) {
          ssize_t m =
              ::sendfile(fd, body->fd(), &offset, body->size() - static_cast<size_t>(offset));
          if (m > 0 || (m < 0 && errno == EINTR)) continue;
          if (m < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            log::debug(kComponent, "conn={} remote={} sendfile: {}", id_, remote_,
                       std::strerror(errno));
            close_now();
            return;
          }
          break;
        }
        body_sent = static_cast<size_t>(offset);
      }
      if (head_sent + body_sent > 0) server_instrument_bytes(head_sent + body_sent);
      if (head_sent == head.size() && body_sent == body->size()) return;
    }
    std::string_view rest = body->view().substr(body_sent);
    write_op(head.substr(head_sent), {}, std::move(body), rest, nullptr, 0);
  }

  void write_raw(std::string bytes) { write_op({}, std::move(bytes), nullptr, {}, nullptr, 0); }

  /// Writes `head` then a body: `owned`, or `view` kept alive by `keep` (null for static bytes).
  /// What the kernel takes at once is written at once; the rest is queued in an op that copies
  /// the unwritten part of `head` and owns or holds the body until its callback.
  /// `stream_bytes` of it are reported back to `stream` when written.
  void write_op(std::string_view head, std::string owned, std::shared_ptr<const void> keep,
                std::string_view view, StreamWriterPtr stream, size_t stream_bytes) {
    if (state_ == State::kClosing) return;
    std::string_view body = owned.empty() ? view : std::string_view(owned);
    size_t total = head.size() + body.size();
    if (total == 0) return;
    size_t written = 0;
    // Most answers fit in the socket buffer. Writing them at once spares an allocation, a
    // deferred callback and the epoll_ctl libuv makes whenever a queued write completes (one per
    // request otherwise). Only with nothing queued, so bytes keep their order; stream bytes keep
    // the queued path, whose callback drives the stream's backpressure.
    if (queued_bytes_ == 0 && !stream) {
      uv_buf_t now[2];
      unsigned count = 0;
      if (!head.empty()) now[count++] = uv_buf_init(const_cast<char*>(head.data()), head.size());
      if (!body.empty()) now[count++] = uv_buf_init(const_cast<char*>(body.data()), body.size());
      int rc = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), now, count);
      if (rc < 0 && rc != UV_EAGAIN) {
        log::debug(kComponent, "conn={} remote={} write: {}", id_, remote_, uv_strerror(rc));
        close_now();
        return;
      }
      if (rc > 0) {
        written = static_cast<size_t>(rc);
        server_instrument_bytes(written);
      }
      if (written == total) return;
    }
    WriteOp* op = spare_op_ ? spare_op_.release() : new WriteOp;
    op->connection = this;
    // Only the unwritten end of the head is kept.
    const size_t head_written = std::min(written, head.size());
    op->head.assign(head.substr(head_written));
    op->owned = std::move(owned);
    op->keep = std::move(keep);
    op->stream = std::move(stream);
    op->size = stream_bytes;
    // The op's own bytes (moving a short string moves its bytes), less what already went out.
    std::string_view rest = op->owned.empty() ? view : std::string_view(op->owned);
    rest.remove_prefix(written - head_written);
    uv_buf_t bufs[2];
    unsigned n = 0;
    if (!op->head.empty()) {
      bufs[n++] = uv_buf_init(op->head.data(), op->head.size());
    }
    if (!rest.empty()) {
      bufs[n++] = uv_buf_init(const_cast<char*>(rest.data()), rest.size());
    }
    op->req.data = op;
    op->total = total - written;
    queued_bytes_ += op->total;
    int rc = uv_write(&op->req, reinterpret_cast<uv_stream_t*>(&tcp_), bufs, n,
                      [](uv_write_t* req, int status) {
                        std::unique_ptr<WriteOp> done(static_cast<WriteOp*>(req->data));
                        Connection* connection = done->connection;
                        connection->on_write_done(*done, status);
                        connection->recycle(std::move(done));
                      });
    if (rc != 0) {
      queued_bytes_ -= op->total;
      if (op->stream) op->stream->write_done(op->size);
      recycle(std::unique_ptr<WriteOp>(op));
      log::debug(kComponent, "conn={} remote={} write: {}", id_, remote_, uv_strerror(rc));
      close_now();
    }
  }

  /// Keeps one finished op for the next queued write, so a connection that streams media parts
  /// one after another does not allocate an op per answer.
  void recycle(std::unique_ptr<WriteOp> op) {
    if (spare_op_) return;
    op->head.clear();
    op->owned = std::string();
    op->keep.reset();
    op->stream.reset();
    op->size = 0;
    op->total = 0;
    spare_op_ = std::move(op);
  }

  void on_write_done(WriteOp& op, int status) {
    queued_bytes_ -= op.total;
    if (status == 0) server_instrument_bytes(op.total);
    if (op.stream) op.stream->write_done(op.size);
    if (status < 0) {
      if (state_ != State::kClosing) {
        log::debug(kComponent, "conn={} remote={} write: {}", id_, remote_, uv_strerror(status));
        close_now();
      }
      return;
    }
    resume_input();
    maybe_shutdown_writes();
  }

  void server_instrument_bytes(size_t n) {
    if (server_ != nullptr) server_->instruments().bytes_sent->inc(static_cast<double>(n));
  }

  void maybe_shutdown_writes() {
    if (state_ != State::kFinishing || !pending_.empty() || queued_bytes_ != 0) return;
    state_ = State::kLingering;
    // A FIN, then reading until the client closes: closing with unread input would reset the
    // connection and could destroy the answer before the client read it.
    start_reading();
    shutdown_req_.data = this;
    int rc = uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_),
                         [](uv_shutdown_t* req, int) {
                           auto* self = static_cast<Connection*>(req->data);
                           self->shutdown_pending_ = false;
                         });
    if (rc != 0) {
      close_now();
      return;
    }
    shutdown_pending_ = true;
    set_timer(TimerKind::kLinger, server_->limits().linger_ms);
  }

  void update_timer() {
    if (state_ != State::kOpen) return;
    const auto& limits = server_->limits();
    if (!pending_.empty()) {
      set_timer(TimerKind::kNone, 0);
      return;
    }
    switch (parser_.phase()) {
      case ParsePhase::kIdle:
        if (inbuf_.empty()) set_timer(TimerKind::kIdle, limits.idle_timeout_ms);
        break;
      case ParsePhase::kHeaders:
        set_timer(TimerKind::kHeaders, limits.header_timeout_ms);
        break;
      case ParsePhase::kBody:
        set_timer(TimerKind::kBody, limits.body_timeout_ms);
        break;
    }
  }

  /// Starts the timer for `kind` unless it already runs for it: a timeout counts from the start
  /// of its phase, so a client trickling bytes cannot keep extending it.
  void set_timer(TimerKind kind, uint64_t ms) {
    if (kind == timer_kind_) return;
    timer_kind_ = kind;
    if (kind == TimerKind::kNone) {
      uv_timer_stop(&timer_);
      return;
    }
    uv_timer_start(
        &timer_, [](uv_timer_t* t) { static_cast<Connection*>(t->data)->on_timer(); }, ms, 0);
  }

  void on_timer() {
    TimerKind kind = timer_kind_;
    timer_kind_ = TimerKind::kNone;
    switch (kind) {
      case TimerKind::kIdle:
        log::debug(kComponent, "conn={} remote={} idle timeout", id_, remote_);
        close_now();
        break;
      case TimerKind::kHeaders:
      case TimerKind::kBody: {
        bool headers = kind == TimerKind::kHeaders;
        log::warn(kComponent, "conn={} remote={} request {} timeout", id_, remote_,
                  headers ? "header" : "body");
        Request request;
        request.method = "UNPARSED";
        request.route = "unparsed";
        start_exchange_with_response(
            std::move(request),
            Response::problem(408, "request-timeout", "Request timeout",
                              headers ? "the request headers did not arrive in time"
                                      : "the request body did not arrive in time"));
        break;
      }
      case TimerKind::kLinger:
        close_now();
        break;
      case TimerKind::kNone:
        break;
    }
  }

  Server* server_;
  uint64_t id_;
  std::string remote_;
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  uv_shutdown_t shutdown_req_;
  int open_handles_ = 2;
  State state_ = State::kOpen;
  TimerKind timer_kind_ = TimerKind::kNone;
  RequestParser parser_;
  std::string inbuf_;
  std::deque<Pending> pending_;
  size_t queued_bytes_ = 0;
  /// The head being built (begin_head); reused so that answering allocates nothing for it.
  std::string head_;
  std::unique_ptr<WriteOp> spare_op_;
  bool reading_ = false;
  bool processing_ = false;
  bool shutdown_pending_ = false;
};

Server::Server(Loop& loop, Router& router, ServerLimits limits, Metrics& metrics, CorsPolicy cors)
    : loop_(loop), router_(router), limits_(limits), cors_(std::move(cors)), shutdown_timer_(loop) {
  // sendfile(2), unlike send(2), takes no MSG_NOSIGNAL: a client that leaves while a sealed body
  // is being sent would kill the process with SIGPIPE instead of failing the call with EPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  instruments_.requests = &metrics.counter("hawker_http_requests_total",
                                           "HTTP requests answered, by route, method and status.",
                                           {"route", "method", "status"});
  instruments_.duration = &metrics.histogram(
      "hawker_http_request_duration_seconds",
      "Time from a request's arrival to its answer being queued, by route.", {"route"});
  instruments_.open_connections =
      &metrics.gauge("hawker_http_open_connections", "Open HTTP connections.").with({});
  instruments_.bytes_sent =
      &metrics.counter("hawker_http_sent_bytes_total", "Bytes written to HTTP clients.").with({});
  instruments_.rejected_connections =
      &metrics
           .counter("hawker_http_rejected_connections_total",
                    "Connections closed at once because max_connections was reached.")
           .with({});
  instruments_.protocol_errors =
      &metrics
           .counter("hawker_http_protocol_errors_total",
                    "Requests refused as malformed or over a limit, before routing.")
           .with({});
}

Server::~Server() {
  // Connections outlive the server until their handles finish closing; they free themselves.
  for (auto& [ptr, owned] : connections_) {
    Connection* c = owned.release();
    c->detach_server();
    c->close_now();
  }
  instruments_.open_connections->set(0);
  connections_.clear();
}

Result<int> Server::listen(std::string host, int port) {
  sockaddr_storage addr{};
  int rc = host.find(':') != std::string::npos
               ? uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr))
               : uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr));
  if (rc != 0) return uv_error(rc, fmt::format("parse listen address {}", host));
  UvPtr<uv_tcp_t> tcp(new uv_tcp_t);
  uv_tcp_init(loop_.uv(), tcp.get());
  tcp->data = this;
  rc = uv_tcp_bind(tcp.get(), reinterpret_cast<sockaddr*>(&addr), 0);
  if (rc != 0) return uv_error(rc, fmt::format("bind {}:{}", host, port));
  rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp.get()), 511, [](uv_stream_t* s, int status) {
    static_cast<Server*>(s->data)->on_connection(status);
  });
  if (rc != 0) return uv_error(rc, fmt::format("listen {}:{}", host, port));
  sockaddr_storage bound{};
  int len = sizeof(bound);
  uv_tcp_getsockname(tcp.get(), reinterpret_cast<sockaddr*>(&bound), &len);
  int bound_port = bound.ss_family == AF_INET6
                       ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                       : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  listener_ = std::move(tcp);
  log::info(kComponent, "listening on {}:{}", host, bound_port);
  return bound_port;
}

void Server::on_connection(int status) {
  if (status < 0) {
    log::warn(kComponent, "accept: {}", uv_strerror(status));
    return;
  }
  auto connection = std::make_unique<Connection>(this, next_connection_id_++);
  Connection* c = connection.get();
  if (uv_accept(reinterpret_cast<uv_stream_t*>(listener_.get()),
                reinterpret_cast<uv_stream_t*>(c->tcp())) != 0) {
    connection.release()->detach_server();
    c->close_now();
    return;
  }
  if (connections_.size() >= limits_.max_connections || draining_) {
    instruments_.rejected_connections->inc();
    log::warn(kComponent, "conn={} refused: {} connections open", c->id(), connections_.size());
    connection.release()->detach_server();
    c->close_now();
    return;
  }
  connections_.emplace(c, std::move(connection));
  instruments_.open_connections->set(static_cast<double>(connections_.size()));
  c->start();
}

Counter& Server::RouteInstruments::requests(std::string_view method, int status) {
  for (const auto& known : by_method_status) {
    if (known.status == status && known.method == method) return *known.counter;
  }
  Counter& counter = family->with({route, std::string(method), std::to_string(status)});
  by_method_status.push_back({method, status, &counter});
  return counter;
}

Server::RouteInstruments& Server::route_instruments(std::string_view route) {
  auto it = routes_.find(route);
  if (it == routes_.end()) {
    auto inst = std::make_unique<RouteInstruments>();
    inst->route = std::string(route);
    inst->family = instruments_.requests;
    inst->duration = &instruments_.duration->with({inst->route});
    it = routes_.emplace(inst->route, std::move(inst)).first;
  }
  return *it->second;
}

void Server::connection_closed(Connection* connection) {
  connections_.erase(connection);
  instruments_.open_connections->set(static_cast<double>(connections_.size()));
  maybe_finish_shutdown();
}

void Server::stop_accepting() { listener_.reset(); }

void Server::shutdown(uint64_t deadline_ms, std::function<void()> done) {
  stop_accepting();
  draining_ = true;
  shutdown_done_ = std::move(done);
  std::vector<Connection*> open;
  for (auto& [ptr, owned] : connections_) open.push_back(ptr);
  for (Connection* c : open) {
    if (connections_.contains(c)) c->drain();
  }
  shutdown_timer_.start(deadline_ms, 0, [this] {
    std::vector<Connection*> left;
    for (auto& [ptr, owned] : connections_) left.push_back(ptr);
    if (!left.empty()) {
      log::warn(kComponent, "shutdown deadline: closing {} connections", left.size());
    }
    for (Connection* c : left) c->close_now();
    maybe_finish_shutdown();
  });
  maybe_finish_shutdown();
}

void Server::maybe_finish_shutdown() {
  if (!draining_ || !connections_.empty() || !shutdown_done_) return;
  shutdown_timer_.stop();
  auto done = std::move(shutdown_done_);
  shutdown_done_ = nullptr;
  done();
}

Handler metrics_handler(Metrics& metrics, bool include_process) {
  return [&metrics, include_process](const Request&, ExchangePtr exchange) {
    if (include_process) collect_process_metrics(metrics);
    Response r = Response::text(200, metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
    r.headers.set("Cache-Control", "no-store");
    exchange->respond(std::move(r));
  };
}

}  // namespace hawker::http
