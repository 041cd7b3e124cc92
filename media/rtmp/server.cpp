#include "media/rtmp/server.h"

#include <algorithm>
#include <array>

#include "core/log.h"
#include "media/rtmp/session.h"

namespace hawker::media::rtmp {

namespace {

constexpr size_t kReadBufferSize = 64 * 1024;

std::string peer_name(uv_tcp_t* tcp) {
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "unknown";
  char host[64] = {0};
  if (addr.ss_family == AF_INET6) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
    uv_ip6_name(a6, host, sizeof host);
    return fmt::format("[{}]:{}", host, ntohs(a6->sin6_port));
  }
  auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
  uv_ip4_name(a4, host, sizeof host);
  return fmt::format("{}:{}", host, ntohs(a4->sin_port));
}

struct WriteRequest {
  uv_write_t req;
  std::vector<uint8_t> bytes;
};

}  // namespace

/// One TCP connection. Its memory belongs to its libuv handle: it is deleted in the close
/// callback, so it outlives every callback already running for it.
class RtmpServer::Connection final : public SessionEvents {
 public:
  enum class State { kOpen, kDraining, kClosing };

  Connection(RtmpServer& server, uint64_t id)
      : server_(&server),
        id_(id),
        session_(
            *this, [this](std::vector<uint8_t>&& bytes) { write(std::move(bytes)); },
            session_limits(server.limits_)) {
    tcp_.data = this;
  }

  static SessionLimits session_limits(const RtmpLimits& limits) {
    SessionLimits out;
    out.chunk.max_chunk_size = limits.max_chunk_size;
    out.chunk.max_message_size = limits.max_message_size;
    out.chunk.max_buffered_bytes = limits.max_buffer_bytes;
    return out;
  }

  void start(uint64_t now_ms) {
    remote_ = peer_name(&tcp_);
    accepted_at_ms_ = now_ms;
    last_media_ms_ = now_ms;
    uv_tcp_nodelay(&tcp_, 1);
    int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &Connection::on_alloc,
                           &Connection::on_read);
    if (rc != 0) server_->close(*this, uv_strerror(rc));
  }

  void begin_close() {
    state_ = State::kClosing;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Connection::on_closed);
  }

  /// Lets the peer read what was sent (the refusal), then closes: FIN now, close on the peer's
  /// EOF or when the linger deadline passes.
  void drain(uint64_t deadline_ms) {
    if (state_ != State::kOpen) return;
    state_ = State::kDraining;
    drain_deadline_ms_ = deadline_ms;
    auto* req = new uv_shutdown_t;
    if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&tcp_),
                    [](uv_shutdown_t* r, int) { delete r; }) != 0) {
      delete req;
    }
  }

  ConnectionInfo info() const {
    return ConnectionInfo{id_,       remote_,   session_.app(), session_.publishing(),
                          bytes_in_, bytes_out_};
  }

  uv_tcp_t tcp_;
  RtmpServer* server_;  ///< nullptr once the server is gone
  uint64_t id_;
  std::string remote_ = "unknown";
  State state_ = State::kOpen;
  Session session_;
  uint64_t accepted_at_ms_ = 0;
  uint64_t last_media_ms_ = 0;
  uint64_t drain_deadline_ms_ = 0;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  bool asked_publish_ = false;
  bool failed_ = false;
  std::array<char, kReadBufferSize> read_buffer_;

 private:
  uint64_t now() const { return uv_now(server_->loop_.uv()); }

  void write(std::vector<uint8_t>&& bytes) {
    // Nothing may follow the shutdown of a draining connection.
    if (state_ != State::kOpen || bytes.empty()) return;
    auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
    if (uv_stream_get_write_queue_size(stream) + bytes.size() > server_->limits_.max_buffer_bytes) {
      server_->close(*this, "peer does not read what it is sent");
      return;
    }
    auto* w = new WriteRequest{uv_write_t{}, std::move(bytes)};
    w->req.data = this;
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(w->bytes.data()),
                               static_cast<unsigned>(w->bytes.size()));
    bytes_out_ += w->bytes.size();
    int rc = uv_write(&w->req, stream, &buf, 1, &Connection::on_written);
    if (rc != 0) {
      delete w;
      server_->close(*this, fmt::format("write: {}", uv_strerror(rc)));
    }
  }

  static void on_written(uv_write_t* req, int status) {
    auto* w = reinterpret_cast<WriteRequest*>(req);
    auto* conn = static_cast<Connection*>(req->data);
    delete w;
    // A cancelled write means the handle is closing; the connection is still allocated here.
    if (status < 0 && conn->state_ != State::kClosing && conn->server_ != nullptr) {
      conn->server_->close(*conn, fmt::format("write: {}", uv_strerror(status)));
    }
  }

  static void on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
    auto* conn = static_cast<Connection*>(handle->data);
    *buf = uv_buf_init(conn->read_buffer_.data(), static_cast<unsigned>(conn->read_buffer_.size()));
  }

  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* conn = static_cast<Connection*>(stream->data);
    if (conn->state_ == State::kClosing || conn->server_ == nullptr) return;
    if (nread < 0) {
      conn->server_->close(*conn, nread == UV_EOF ? std::string("peer closed the connection")
                                                  : fmt::format("read: {}", uv_strerror(nread)));
      return;
    }
    conn->bytes_in_ += static_cast<uint64_t>(nread);
    conn->session_.feed(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(buf->base),
                                                 static_cast<size_t>(nread)));
    if (conn->failed_ && conn->server_ != nullptr) {
      conn->drain(conn->now() + conn->server_->limits_.reject_linger_ms);
    }
  }

  static void on_closed(uv_handle_t* handle) {
    auto* conn = static_cast<Connection*>(handle->data);
    if (conn->server_ != nullptr) {
      conn->server_->closing_.erase(conn->id_);
      if (conn->asked_publish_) conn->server_->delegate_.on_disconnect(conn->id_);
    }
    delete conn;
  }

  // SessionEvents: forward to the delegate with this connection's id.
  void on_publish_request(std::string_view app, std::string_view stream_name,
                          std::string_view query) override {
    asked_publish_ = true;
    RtmpServer* server = server_;
    uint64_t id = id_;
    std::weak_ptr<bool> alive = server->alive_;
    log::info("rtmp", "conn={} remote={} asks to publish on app '{}'", id_, remote_, app);
    server->delegate_.authorize(
        id_, remote_, app, stream_name, query, [alive, server, id](bool ok, std::string reason) {
          if (alive.expired()) return;
          auto it = server->connections_.find(id);
          if (it == server->connections_.end()) return;
          Connection& conn = *it->second;
          if (conn.state_ != State::kOpen) return;
          uint64_t now = uv_now(server->loop_.uv());
          if (ok) {
            log::info("rtmp", "conn={} remote={} publishing", id, conn.remote_);
            conn.last_media_ms_ = now;
            conn.session_.accept_publish();
          } else {
            log::info("rtmp", "conn={} remote={} publish refused: {}", id, conn.remote_, reason);
            conn.session_.reject_publish(reason.empty() ? "Publishing refused." : reason);
            conn.drain(now + server->limits_.reject_linger_ms);
          }
        });
  }
  void on_track_config(const TrackConfig& config) override {
    last_media_ms_ = now();
    server_->delegate_.on_track_config(id_, config);
  }
  void on_packet(Packet&& packet) override {
    last_media_ms_ = now();
    server_->delegate_.on_packet(id_, std::move(packet));
  }
  void on_metadata(const amf0::Value& metadata) override {
    server_->delegate_.on_metadata(id_, metadata);
  }
  void on_unpublish() override {
    log::info("rtmp", "conn={} remote={} stopped publishing", id_, remote_);
    server_->delegate_.on_unpublish(id_);
  }
  void on_error(const Error& error) override {
    log::warn("rtmp", "conn={} remote={} {}: {}", id_, remote_, to_string(error.code),
              error.message);
    // Closed once feed() returns, so that a status the session queued still goes out first.
    failed_ = true;
  }
};

RtmpServer::RtmpServer(Loop& loop, IngestDelegate& delegate, RtmpLimits limits)
    : loop_(loop),
      delegate_(delegate),
      limits_(limits),
      sweep_timer_(loop),
      alive_(std::make_shared<bool>(true)) {}

RtmpServer::~RtmpServer() {
  shutdown();
  for (auto& [id, conn] : closing_) conn->server_ = nullptr;
  closing_.clear();
}

Result<int> RtmpServer::listen(const std::string& host, int port) {
  if (listener_ != nullptr) return unexpected(ErrorCode::kInvalidArgument, "already listening");
  sockaddr_storage addr{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    return unexpected(ErrorCode::kInvalidArgument, fmt::format("rtmp: bad listen host '{}'", host));
  }
  listener_ = new uv_tcp_t;
  uv_tcp_init(loop_.uv(), listener_);
  listener_->data = this;
  int rc = uv_tcp_bind(listener_, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener_), 128, &on_new_connection);
  if (rc != 0) {
    close_and_delete(listener_);
    listener_ = nullptr;
    return uv_error(rc, fmt::format("rtmp: listen on {}:{}", host, port));
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(listener_, reinterpret_cast<sockaddr*>(&bound), &len);
  int bound_port = bound.ss_family == AF_INET6
                       ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                       : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  uint64_t shortest = std::min(limits_.handshake_timeout_ms, limits_.idle_timeout_ms);
  uint64_t interval =
      std::clamp<uint64_t>(std::min<uint64_t>(shortest, limits_.reject_linger_ms) / 4, 5, 250);
  sweep_timer_.start(interval, interval, [this] { sweep(); });
  log::info("rtmp", "listening on {}:{}", host, bound_port);
  return bound_port;
}

void RtmpServer::stop_accepting() {
  if (listener_ == nullptr) return;
  close_and_delete(listener_);
  listener_ = nullptr;
}

void RtmpServer::close_connection(uint64_t conn_id) {
  auto it = connections_.find(conn_id);
  if (it != connections_.end()) close(*it->second, "closed by the server");
}

void RtmpServer::shutdown() {
  stop_accepting();
  sweep_timer_.stop();
  while (!connections_.empty()) close(*connections_.begin()->second, "server shutting down");
}

std::vector<ConnectionInfo> RtmpServer::connections() const {
  std::vector<ConnectionInfo> out;
  out.reserve(connections_.size());
  for (const auto& [id, conn] : connections_) out.push_back(conn->info());
  return out;
}

void RtmpServer::on_new_connection(uv_stream_t* listener, int status) {
  auto* server = static_cast<RtmpServer*>(listener->data);
  if (status < 0) {
    log::warn("rtmp", "accept: {}", uv_strerror(status));
    return;
  }
  auto* conn = new Connection(*server, server->next_id_++);
  uv_tcp_init(server->loop_.uv(), &conn->tcp_);
  server->connections_[conn->id_] = conn;
  int rc = uv_accept(listener, reinterpret_cast<uv_stream_t*>(&conn->tcp_));
  if (rc != 0) {
    server->close(*conn, fmt::format("accept: {}", uv_strerror(rc)));
    return;
  }
  if (server->connections_.size() > server->limits_.max_connections) {
    conn->remote_ = peer_name(&conn->tcp_);
    server->close(*conn, "too many connections");
    return;
  }
  conn->start(uv_now(server->loop_.uv()));
  log::debug("rtmp", "conn={} remote={} accepted", conn->id_, conn->remote_);
}

void RtmpServer::sweep() {
  uint64_t now = uv_now(loop_.uv());
  std::vector<std::pair<Connection*, const char*>> expired;
  for (const auto& [id, conn] : connections_) {
    if (conn->state_ == Connection::State::kDraining && now >= conn->drain_deadline_ms_) {
      expired.emplace_back(conn, "refused publisher closed");
    } else if (conn->session_.state() == Session::State::kHandshake &&
               now - conn->accepted_at_ms_ >= limits_.handshake_timeout_ms) {
      expired.emplace_back(conn, "handshake timeout");
    } else if (now - conn->last_media_ms_ >= limits_.idle_timeout_ms) {
      expired.emplace_back(conn, "idle timeout: no media");
    }
  }
  for (auto& [conn, why] : expired) close(*conn, why);
}

void RtmpServer::close(Connection& conn, std::string_view why) {
  if (conn.state_ == Connection::State::kClosing) return;
  log::info("rtmp", "conn={} remote={} closed: {} (in={} out={} bytes)", conn.id_, conn.remote_,
            why, conn.bytes_in_, conn.bytes_out_);
  connections_.erase(conn.id_);
  closing_[conn.id_] = &conn;
  conn.begin_close();
}

}  // namespace hawker::media::rtmp
