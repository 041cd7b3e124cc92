// LL-HLS viewers as hls.js behaves in low-latency mode, against one stream: each viewer keeps
// one HTTP/1.1 connection, asks for the media playlist with _HLS_msn/_HLS_part of the part the
// preload hint names (a blocking reload), then fetches every part the answer lists after the
// last one it fetched, then blocks on the next hint again.
//
// A part's reference time is when the first viewer learned it exists (the earliest playlist
// answer that lists it, over all viewers and threads). A part is late for a viewer when that
// viewer finished downloading it more than --late-ms after the reference. A viewer is served
// when in the measurement window it fetched parts, none late, and had no error (status other
// than 200, a closed or failed connection, or no answer within 10 s).
//
// Usage: hawker_bench_viewers --port P --path /live/c/source/playlist.m3u8 --viewers N
//        [--host 127.0.0.1] [--threads 1] [--ramp-ms 2000] [--warmup 5] [--seconds 15]
//        [--late-ms 250]
// Prints one JSON object.
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
namespace {

using PartId = std::pair<int64_t, int>;  // (msn, index)

int64_t now_ns() { return static_cast<int64_t>(uv_hrtime()); }

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path;
  int viewers = 100;
  int threads = 1;
  int ramp_ms = 2000;
  double warmup_s = 5;
  double seconds = 15;
  double late_ms = 250;
};

struct Fetch {
  PartId part;
  int viewer;
  int64_t done_ns;
};

struct ViewerStats {
  int64_t parts = 0;
  int64_t playlists = 0;
  int64_t errors = 0;
  std::string first_error;
};

class Worker;

constexpr int64_t kResponseTimeoutNs = 10'000'000'000;

// Finds `#EXT-X-PART:...URI="partM.I.m4s"` entries and the preload hint in a media playlist.
bool parse_part_uri(std::string_view uri, PartId& out) {
  if (!uri.starts_with("part")) {
    return false;
  }
  uri.remove_prefix(4);
  const size_t dot = uri.find('.');
  if (dot == std::string_view::npos) {
    return false;
  }
  int64_t msn = 0;
  int index = 0;
  auto r1 = std::from_chars(uri.data(), uri.data() + dot, msn);
  auto r2 = std::from_chars(uri.data() + dot + 1, uri.data() + uri.size(), index);
  if (r1.ec != std::errc() || r2.ec != std::errc() ||
      std::string_view(r2.ptr).substr(0, 4) != ".m4s") {
    return false;
  }
  out = {msn, index};
  return true;
}

bool uri_after(std::string_view line, std::string_view key, PartId& out) {
  const size_t k = line.find(key);
  if (k == std::string_view::npos) {
    return false;
  }
  const size_t start = k + key.size();
  const size_t end = line.find('"', start);
  if (end == std::string_view::npos) {
    return false;
  }
  return parse_part_uri(line.substr(start, end - start), out);
}

struct Playlist {
  std::vector<PartId> parts;
  PartId hint{-1, -1};
};

bool parse_playlist(std::string_view text, Playlist& out) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    std::string_view line = text.substr(pos, end - pos);
    PartId id;
    if (line.starts_with("#EXT-X-PART:") && uri_after(line, "URI=\"", id)) {
      out.parts.push_back(id);
    } else if (line.starts_with("#EXT-X-PRELOAD-HINT:") && uri_after(line, "URI=\"", id)) {
      out.hint = id;
    }
    pos = end + 1;
  }
  return out.hint.first >= 0;
}

class Viewer {
 public:
  Viewer(Worker& worker, int id) : worker_(worker), id_(id) {}
  void start();
  void on_timer_check(int64_t now);
  const ViewerStats& stats() const { return stats_; }
  bool measuring_error() const { return measuring_errors_ > 0; }

 private:
  enum class Want { kPlaylist, kPart };
  static void on_connect(uv_connect_t* req, int status);
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  void send(const std::string& target, Want want);
  void next();
  void on_response(int status, std::string_view body);
  bool parse_response();
  void fail(const std::string& why);
  void reconnect();

  Worker& worker_;
  int id_;
  uv_tcp_t* tcp_ = nullptr;
  bool connected_ = false;
  std::string in_;
  Want want_ = Want::kPlaylist;
  PartId requested_part_{-1, -1};
  int64_t sent_ns_ = 0;
  bool waiting_ = false;
  PartId last_fetched_{-1, -1};
  PartId hint_{-1, -1};
  std::vector<PartId> queue_;
  ViewerStats stats_;
  int64_t measuring_errors_ = 0;
  char read_buf_[65536];
};

class Worker {
 public:
  Worker(const Options& options, int first_id, int count, int64_t start_ns)
      : options_(options), first_id_(first_id), count_(count), start_ns_(start_ns) {}

  void run() {
    uv_loop_init(&loop_);
    uv_ip4_addr(options_.host.c_str(), options_.port, &addr_);
    for (int i = 0; i < count_; ++i) {
      viewers_.push_back(std::make_unique<Viewer>(*this, first_id_ + i));
    }
    uv_timer_init(&loop_, &timer_);
    timer_.data = this;
    uv_timer_start(&timer_, on_tick, 0, 10);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }

  static void on_tick(uv_timer_t* t) {
    auto* self = static_cast<Worker*>(t->data);
    const int64_t now = now_ns();
    const int64_t elapsed = now - self->start_ns_;
    const int64_t ramp_ns = static_cast<int64_t>(self->options_.ramp_ms) * 1'000'000;
    // Viewers join evenly over the ramp, as an audience arriving.
    while (self->started_ < self->count_ &&
           (ramp_ns == 0 || elapsed * self->count_ >= ramp_ns * self->started_)) {
      self->viewers_[self->started_++]->start();
    }
    for (auto& v : self->viewers_) {
      v->on_timer_check(now);
    }
    if (now >= self->end_ns()) {
      uv_timer_stop(t);
      self->stopping_ = true;
      uv_walk(
          &self->loop_,
          [](uv_handle_t* h, void* arg) {
            if (uv_is_closing(h)) {
              return;
            }
            if (h->type == UV_TCP) {
              uv_close(h, [](uv_handle_t* c) { delete reinterpret_cast<uv_tcp_t*>(c); });
            } else if (h != reinterpret_cast<uv_handle_t*>(arg)) {
              uv_close(h, [](uv_handle_t* c) { delete reinterpret_cast<uv_timer_t*>(c); });
            } else {
              uv_close(h, nullptr);
            }
          },
          &self->timer_);
    }
  }

  int64_t measure_start_ns() const {
    return start_ns_ + static_cast<int64_t>(options_.ramp_ms) * 1'000'000 +
           static_cast<int64_t>(options_.warmup_s * 1e9);
  }
  int64_t end_ns() const {
    return measure_start_ns() + static_cast<int64_t>(options_.seconds * 1e9);
  }
  bool measuring(int64_t t) const { return t >= measure_start_ns() && t < end_ns(); }
  bool stopping() const { return stopping_; }

  void saw_part(PartId id, int64_t t) {
    auto [it, inserted] = first_seen_.emplace(id, t);
    if (!inserted && t < it->second) {
      it->second = t;
    }
  }
  void fetched(PartId id, int viewer, int64_t t) { fetches_.push_back({id, viewer, t}); }

  uv_loop_t* loop() { return &loop_; }
  const sockaddr_in& addr() const { return addr_; }
  const Options& options() const { return options_; }
  const std::map<PartId, int64_t>& first_seen() const { return first_seen_; }
  const std::vector<Fetch>& fetches() const { return fetches_; }
  const std::vector<std::unique_ptr<Viewer>>& viewers() const { return viewers_; }
  int first_id() const { return first_id_; }

 private:
  const Options& options_;
  int first_id_;
  int count_;
  int64_t start_ns_;
  int started_ = 0;
  bool stopping_ = false;
  uv_loop_t loop_{};
  uv_timer_t timer_{};
  sockaddr_in addr_{};
  std::vector<std::unique_ptr<Viewer>> viewers_;
  std::map<PartId, int64_t> first_seen_;
  std::vector<Fetch> fetches_;
};

void Viewer::start() {
  tcp_ = new uv_tcp_t;
  uv_tcp_init(worker_.loop(), tcp_);
  tcp_->data = this;
  uv_tcp_nodelay(tcp_, 1);
  auto* req = new uv_connect_t;
  req->data = this;
  const int rc =
      uv_tcp_connect(req, tcp_, reinterpret_cast<const sockaddr*>(&worker_.addr()), on_connect);
  if (rc != 0) {
    delete req;
    fail(std::string("connect: ") + uv_strerror(rc));
  }
}

void Viewer::on_connect(uv_connect_t* req, int status) {
  auto* self = static_cast<Viewer*>(req->data);
  delete req;
  if (status == UV_ECANCELED) {
    return;
  }
  if (status != 0) {
    self->fail(std::string("connect: ") + uv_strerror(status));
    return;
  }
  self->connected_ = true;
  uv_read_start(reinterpret_cast<uv_stream_t*>(self->tcp_), on_alloc, on_read);
  self->hint_ = {-1, -1};
  self->queue_.clear();
  self->next();
}

void Viewer::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Viewer*>(handle->data);
  *buf = uv_buf_init(self->read_buf_, sizeof(self->read_buf_));
}

void Viewer::on_read(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
  auto* self = static_cast<Viewer*>(stream->data);
  if (n < 0) {
    self->fail(n == UV_EOF ? "connection closed by the server" : uv_strerror(static_cast<int>(n)));
    return;
  }
  self->in_.append(buf->base, static_cast<size_t>(n));
  while (self->waiting_ && self->parse_response()) {
  }
}

void Viewer::on_write(uv_write_t* req, int status) {
  auto* data = static_cast<std::pair<Viewer*, std::string>*>(req->data);
  Viewer* self = data->first;
  delete data;
  delete req;
  if (status != 0 && status != UV_ECANCELED) {
    self->fail(std::string("write: ") + uv_strerror(status));
  }
}

void Viewer::send(const std::string& target, Want want) {
  auto* data = new std::pair<Viewer*, std::string>(
      this, "GET " + target + " HTTP/1.1\r\nHost: " + worker_.options().host +
                "\r\nUser-Agent: hawker-bench-viewers\r\n\r\n");
  auto* req = new uv_write_t;
  req->data = data;
  uv_buf_t buf = uv_buf_init(data->second.data(), static_cast<unsigned>(data->second.size()));
  want_ = want;
  sent_ns_ = now_ns();
  waiting_ = true;
  const int rc = uv_write(req, reinterpret_cast<uv_stream_t*>(tcp_), &buf, 1, on_write);
  if (rc != 0) {
    delete data;
    delete req;
    fail(std::string("write: ") + uv_strerror(rc));
  }
}

void Viewer::next() {
  const std::string& path = worker_.options().path;
  if (!queue_.empty()) {
    requested_part_ = queue_.front();
    queue_.erase(queue_.begin());
    const size_t slash = path.rfind('/');
    send(path.substr(0, slash + 1) + "part" + std::to_string(requested_part_.first) + "." +
             std::to_string(requested_part_.second) + ".m4s",
         Want::kPart);
    return;
  }
  if (hint_.first < 0) {
    send(path, Want::kPlaylist);
  } else {
    send(path + "?_HLS_msn=" + std::to_string(hint_.first) +
             "&_HLS_part=" + std::to_string(hint_.second),
         Want::kPlaylist);
  }
}

// One response from in_, if complete: Content-Length bodies only (hawker and nginx send it for
// these resources).
bool Viewer::parse_response() {
  const size_t head_end = in_.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    return false;
  }
  std::string_view head(in_.data(), head_end);
  int status = 0;
  if (head.size() < 12 || !head.starts_with("HTTP/1.1 ") ||
      std::from_chars(head.data() + 9, head.data() + 12, status).ec != std::errc()) {
    fail("malformed status line");
    return false;
  }
  size_t length = 0;
  bool have_length = false;
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos < head.size()) {
    size_t end = head.find("\r\n", pos + 2);
    std::string_view line =
        head.substr(pos + 2, (end == std::string_view::npos ? head.size() : end) - pos - 2);
    if (line.size() > 15 && strncasecmp(line.data(), "content-length:", 15) == 0) {
      std::string_view v = line.substr(15);
      while (!v.empty() && v.front() == ' ') {
        v.remove_prefix(1);
      }
      have_length = std::from_chars(v.data(), v.data() + v.size(), length).ec == std::errc();
    }
    pos = end;
  }
  if (!have_length) {
    fail("response without Content-Length");
    return false;
  }
  if (in_.size() < head_end + 4 + length) {
    return false;
  }
  std::string body = in_.substr(head_end + 4, length);
  in_.erase(0, head_end + 4 + length);
  waiting_ = false;
  on_response(status, body);
  return true;
}

void Viewer::on_response(int status, std::string_view body) {
  const int64_t t = now_ns();
  if (status != 200) {
    fail("HTTP " + std::to_string(status) +
         (want_ == Want::kPart ? " for a part" : " for a playlist"));
    return;
  }
  if (want_ == Want::kPlaylist) {
    ++stats_.playlists;
    Playlist playlist;
    if (!parse_playlist(body, playlist)) {
      fail("playlist without a preload hint");
      return;
    }
    for (const PartId& id : playlist.parts) {
      worker_.saw_part(id, t);
    }
    if (last_fetched_.first < 0 && playlist.parts.size() >= 2) {
      // A joining viewer starts with the newest part, as hls.js does at the live edge.
      last_fetched_ = playlist.parts[playlist.parts.size() - 2];
    }
    for (const PartId& id : playlist.parts) {
      if (id > last_fetched_) {
        queue_.push_back(id);
      }
    }
    hint_ = playlist.hint;
  } else {
    ++stats_.parts;
    last_fetched_ = std::max(last_fetched_, requested_part_);
    worker_.fetched(requested_part_, id_, t);
  }
  next();
}

void Viewer::on_timer_check(int64_t now) {
  if (waiting_ && connected_ && now - sent_ns_ > kResponseTimeoutNs) {
    fail("no answer within 10 s");
  }
}

void Viewer::fail(const std::string& why) {
  const int64_t t = now_ns();
  ++stats_.errors;
  if (worker_.measuring(t)) {
    ++measuring_errors_;
  }
  if (stats_.first_error.empty()) {
    stats_.first_error = why;
  }
  waiting_ = false;
  connected_ = false;
  in_.clear();
  if (tcp_ != nullptr && !uv_is_closing(reinterpret_cast<uv_handle_t*>(tcp_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(tcp_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  }
  tcp_ = nullptr;
  if (!worker_.stopping()) {
    reconnect();
  }
}

void Viewer::reconnect() {
  // Back after 200 ms from the live edge, as a player retrying.
  auto* timer = new uv_timer_t;
  uv_timer_init(worker_.loop(), timer);
  timer->data = this;
  last_fetched_ = {-1, -1};
  uv_timer_start(
      timer,
      [](uv_timer_t* t) {
        auto* self = static_cast<Viewer*>(t->data);
        uv_close(reinterpret_cast<uv_handle_t*>(t),
                 [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
        if (!self->worker_.stopping()) {
          self->start();
        }
      },
      200, 0);
}

bool parse_options(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s needs a value\n", argv[i]);
      return false;
    }
    const char* v = argv[++i];
    if (a == "--host") {
      o.host = v;
    } else if (a == "--port") {
      o.port = std::atoi(v);
    } else if (a == "--path") {
      o.path = v;
    } else if (a == "--viewers") {
      o.viewers = std::atoi(v);
    } else if (a == "--threads") {
      o.threads = std::atoi(v);
    } else if (a == "--ramp-ms") {
      o.ramp_ms = std::atoi(v);
    } else if (a == "--warmup") {
      o.warmup_s = std::atof(v);
    } else if (a == "--seconds") {
      o.seconds = std::atof(v);
    } else if (a == "--late-ms") {
      o.late_ms = std::atof(v);
    } else {
      std::fprintf(stderr, "unknown option %s\n", argv[i - 1]);
      return false;
    }
  }
  if (o.port <= 0 || o.path.empty() || o.path[0] != '/' || o.viewers <= 0 || o.threads <= 0 ||
      o.seconds <= 0 || o.ramp_ms < 0 || o.warmup_s < 0) {
    std::fprintf(stderr,
                 "usage: hawker_bench_viewers --port P --path /live/C/source/playlist.m3u8 "
                 "--viewers N [--host H] [--threads T] [--ramp-ms MS] [--warmup S] [--seconds S] "
                 "[--late-ms MS]\n");
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse_options(argc, argv, o)) {
    return 2;
  }
  const int64_t start = now_ns();
  std::vector<std::unique_ptr<Worker>> workers;
  const int per = o.viewers / o.threads;
  for (int t = 0; t < o.threads; ++t) {
    const int count = t == o.threads - 1 ? o.viewers - per * t : per;
    workers.push_back(std::make_unique<Worker>(o, per * t, count, start));
  }
  std::vector<std::thread> threads;
  for (auto& w : workers) {
    threads.emplace_back([&w] { w->run(); });
  }
  for (auto& t : threads) {
    t.join();
  }

  std::map<PartId, int64_t> first_seen;
  for (const auto& w : workers) {
    for (const auto& [id, t] : w->first_seen()) {
      auto [it, inserted] = first_seen.emplace(id, t);
      if (!inserted && t < it->second) {
        it->second = t;
      }
    }
  }
  const Worker& w0 = *workers.front();
  std::vector<int64_t> late_parts(static_cast<size_t>(o.viewers), 0);
  std::vector<int64_t> window_parts(static_cast<size_t>(o.viewers), 0);
  std::vector<double> delays_ms;
  int64_t fetches_in_window = 0;
  for (const auto& w : workers) {
    for (const Fetch& f : w->fetches()) {
      auto it = first_seen.find(f.part);
      if (it == first_seen.end() || !w0.measuring(it->second)) {
        continue;
      }
      const double delay_ms = static_cast<double>(f.done_ns - it->second) / 1e6;
      delays_ms.push_back(delay_ms);
      ++fetches_in_window;
      ++window_parts[static_cast<size_t>(f.viewer)];
      if (delay_ms > o.late_ms) {
        ++late_parts[static_cast<size_t>(f.viewer)];
      }
    }
  }
  int served = 0;
  int with_errors = 0;
  int with_late = 0;
  int64_t errors = 0;
  int64_t playlists = 0;
  std::string first_error;
  for (const auto& w : workers) {
    for (size_t i = 0; i < w->viewers().size(); ++i) {
      const Viewer& v = *w->viewers()[i];
      const size_t id = static_cast<size_t>(w->first_id()) + i;
      errors += v.stats().errors;
      playlists += v.stats().playlists;
      if (first_error.empty()) {
        first_error = v.stats().first_error;
      }
      if (v.measuring_error()) {
        ++with_errors;
      }
      if (late_parts[id] > 0) {
        ++with_late;
      }
      if (!v.measuring_error() && late_parts[id] == 0 && window_parts[id] > 0) {
        ++served;
      }
    }
  }
  std::sort(delays_ms.begin(), delays_ms.end());
  auto pct = [&](double p) {
    if (delays_ms.empty()) {
      return 0.0;
    }
    size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(delays_ms.size()));
    return delays_ms[std::min(rank, delays_ms.size() - 1)];
  };
  int64_t window_parts_seen = 0;
  for (const auto& [id, t] : first_seen) {
    if (w0.measuring(t)) {
      ++window_parts_seen;
    }
  }
  std::printf(
      "{\"viewers\": %d, \"served\": %d, \"with_late_parts\": %d, \"with_errors\": %d, "
      "\"errors_total\": %lld, \"parts_in_window\": %lld, \"part_fetches_in_window\": %lld, "
      "\"part_fetches_per_s\": %.1f, \"playlists_total\": %lld, \"delay_ms_p50\": %.1f, "
      "\"delay_ms_p99\": %.1f, \"delay_ms_max\": %.1f, \"late_ms\": %.0f, \"first_error\": "
      "\"%s\"}\n",
      o.viewers, served, with_late, with_errors, static_cast<long long>(errors),
      static_cast<long long>(window_parts_seen), static_cast<long long>(fetches_in_window),
      static_cast<double>(fetches_in_window) / o.seconds, static_cast<long long>(playlists),
      pct(50), pct(99), delays_ms.empty() ? 0.0 : delays_ms.back(), o.late_ms, first_error.c_str());
  return 0;
}
