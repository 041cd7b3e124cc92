// A flash sale's buyers: C keep-alive connections send N `POST /api/orders` in total, each with
// its own Idempotency-Key, one request in flight per connection (a closed loop, as wrk runs
// it). A lean client written for this one request, so that on a machine it shares with hawker
// it takes as little of the CPU as it can: one epoll thread, every request formatted into a
// fixed buffer, one write and (usually) one read per request, no per-request allocation.
//
// A request's latency runs from the write that sends it to the read that completes its
// answer. Percentiles are exact (every latency is kept and sorted). The run's duration runs
// from the first request written to the last answer read.
//
// --rate R makes it an open loop instead: attempt k is due 1/R s after attempt k-1
// (the first once every connection is open), whatever the answers to earlier ones, and goes out
// on an idle connection. Its latency then runs from when it was due, not from its write: time
// it waited for a free connection or for this client's timer (1 ms granularity) counts against
// hawker, so a server that falls behind the rate shows it in every later latency (the
// coordinated omission a closed loop hides; wrk2 measures the same way). The duration runs from
// the first attempt's due time to the last answer.
//
// Usage: hawker_bench_flash --port P --product ID [--host 127.0.0.1] [--attempts 10000]
//        [--connections 1000] [--prefix run1] [--dump FILE] [--preconnect 1] [--rate R]
// --preconnect 1 opens every connection first and sends the first requests together once all
// are open, so no first request is timed while hawker is still accepting the others.
// Prints one line: RESULT {"answered", "created", "refused", "other", "socket_errors",
// "duration_us", "p50_us", "p90_us", "p99_us", "max_us"} (the keys the wrk script prints).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace {

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string product;
  long attempts = 10000;
  int connections = 1000;
  std::string prefix = "flash";
  std::string dump;         // when set: one line per answer, "start_us latency_us status"
  bool preconnect = false;  // open every connection before the first request
  double rate = 0;          // attempts per second offered (an open loop); 0: a closed loop
};

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "hawker_bench_flash: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--host") {
      o.host = v;
    } else if (k == "--port") {
      o.port = std::atoi(v);
    } else if (k == "--product") {
      o.product = v;
    } else if (k == "--attempts") {
      o.attempts = std::atol(v);
    } else if (k == "--connections") {
      o.connections = std::atoi(v);
    } else if (k == "--prefix") {
      o.prefix = v;
    } else if (k == "--dump") {
      o.dump = v;
    } else if (k == "--preconnect") {
      o.preconnect = std::string_view(v) == "1";
    } else if (k == "--rate") {
      o.rate = std::atof(v);
    } else {
      std::fprintf(stderr, "hawker_bench_flash: unknown option %s\n", argv[i]);
      std::exit(2);
    }
  }
  if (o.port <= 0 || o.product.empty() || o.attempts < 1 || o.connections < 1 || o.rate < 0) {
    std::fprintf(stderr,
                 "usage: hawker_bench_flash --port P --product ID [--host H] [--attempts N] "
                 "[--connections C] [--prefix P] [--dump FILE] [--preconnect 1] [--rate R]\n");
    std::exit(2);
  }
  if (o.rate > 0) o.preconnect = true;  // the schedule starts once every connection is open
  return o;
}

struct Conn {
  int fd = -1;
  bool connected = false;
  std::string request;     // the request being sent; rebuilt in place for each
  size_t sent = 0;         // bytes of `request` written
  int64_t started_ns = 0;  // when its first byte was written
  std::vector<char> in;    // the answer read so far
  size_t in_used = 0;
};

/// How far an answer in `data` has come: 0 while incomplete, else its length; the status in
/// `status`. -1: not HTTP as this client reads it (hawker answers orders with Content-Length).
long answer_length(std::string_view data, int& status) {
  size_t head_end = data.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return 0;
  if (data.size() < 12 || data.substr(0, 5) != "HTTP/") return -1;
  status = (data[9] - '0') * 100 + (data[10] - '0') * 10 + (data[11] - '0');
  std::string_view head = data.substr(0, head_end);
  long length = -1;
  size_t pos = 0;
  while (pos < head.size()) {
    size_t eol = head.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = head.size();
    std::string_view line = head.substr(pos, eol - pos);
    constexpr std::string_view kName = "content-length:";
    if (line.size() > kName.size() && std::equal(kName.begin(), kName.end(), line.begin(),
                                                 [](char a, char b) { return a == (b | 0x20); })) {
      std::string_view v = line.substr(kName.size());
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      std::from_chars(v.data(), v.data() + v.size(), length);
    }
    pos = eol + 2;
  }
  if (length < 0) return -1;
  size_t total = head_end + 4 + static_cast<size_t>(length);
  return data.size() >= total ? static_cast<long>(total) : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse_args(argc, argv);
  const std::string body = "{\"product_id\":\"" + opt.product +
                           "\",\"quantity\":1,\"email\":\"buyer@example.com\","
                           "\"name\":\"Buyer\",\"shipping_address\":\"1 Main St\"}";
  const std::string head_before_key =
      "POST /api/orders HTTP/1.1\r\nHost: " + opt.host +
      "\r\nContent-Type: application/json\r\nIdempotency-Key: " + opt.prefix + "-";
  const std::string head_after_key =
      "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(opt.port));
  if (inet_pton(AF_INET, opt.host.c_str(), &addr.sin_addr) != 1) die("host");

  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  int conns = static_cast<int>(std::min<long>(opt.connections, opt.attempts));
  std::vector<Conn> pool(static_cast<size_t>(conns));
  std::vector<int64_t> latencies_ns;
  latencies_ns.reserve(static_cast<size_t>(opt.attempts));
  struct Answer {
    int64_t started_ns;
    int64_t latency_ns;
    int status;
  };
  std::vector<Answer> answers;  // for --dump
  if (!opt.dump.empty()) answers.reserve(static_cast<size_t>(opt.attempts));
  long issued = 0, answered = 0, created = 0, refused = 0, other = 0, socket_errors = 0;
  int open_conns = 0, connected_conns = 0;
  int64_t first_ns = 0, last_ns = 0;

  for (int i = 0; i < conns; ++i) {
    Conn& c = pool[static_cast<size_t>(i)];
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) die("socket");
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 &&
        errno != EINPROGRESS) {
      die("connect");
    }
    c.request.reserve(head_before_key.size() + 24 + head_after_key.size() + body.size());
    c.in.resize(16384);
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u32 = static_cast<uint32_t>(i);
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev) < 0) die("epoll_ctl");
    ++open_conns;
  }

  auto close_conn = [&](Conn& c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
    close(c.fd);
    c.fd = -1;
    --open_conns;
  };
  // Writes what is left of the connection's request; false when the socket failed.
  auto flush = [&](Conn& c, uint32_t index) {
    while (c.sent < c.request.size()) {
      ssize_t n = write(c.fd, c.request.data() + c.sent, c.request.size() - c.sent);
      if (n < 0 && errno == EAGAIN) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.u32 = index;
        epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
        return true;
      }
      if (n <= 0) return false;
      c.sent += static_cast<size_t>(n);
    }
    return true;
  };
  // Sends the next attempt on `c`, its latency timed from `started`.
  auto send = [&](Conn& c, uint32_t index, int64_t started) {
    ++issued;
    c.request.assign(head_before_key);
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, issued);
    c.request.append(digits, end);
    c.request.append(head_after_key);
    c.request.append(body);
    c.sent = 0;
    c.in_used = 0;
    c.started_ns = started;
    if (first_ns == 0) first_ns = started;
    if (!flush(c, index)) {
      ++socket_errors;
      close_conn(c);
    }
  };

  // --rate: attempt k is due at schedule_ns + k / rate; idle connections wait for one.
  const bool open_loop = opt.rate > 0;
  int64_t schedule_ns = 0;  // set when every connection is open
  std::vector<uint32_t> idle;
  idle.reserve(pool.size());
  // Closed loop: starts the next attempt on `c` now. Open loop: `c` waits for the next one
  // due. Either way `c` is closed once every attempt is out.
  auto next = [&](Conn& c, uint32_t index) {
    if (issued >= opt.attempts) return close_conn(c);
    if (open_loop) return idle.push_back(index);
    send(c, index, now_ns());
  };
  // Open loop: sends every attempt that is due on an idle connection. Returns the ms until the
  // next one is due when a connection is idle for it (rounded up: this client's lateness counts
  // against hawker, never in its favour), else -1.
  auto dispatch = [&]() -> int {
    if (!open_loop || schedule_ns == 0) return -1;
    const int64_t now = now_ns();
    while (issued < opt.attempts && !idle.empty()) {
      const int64_t due =
          schedule_ns + static_cast<int64_t>(static_cast<double>(issued) * 1e9 / opt.rate);
      if (due > now) return static_cast<int>((due - now + 999'999) / 1'000'000);
      uint32_t index = idle.back();
      idle.pop_back();
      if (pool[index].fd >= 0) send(pool[index], index, due);
    }
    if (issued >= opt.attempts) {
      for (uint32_t index : idle) {
        if (pool[index].fd >= 0) close_conn(pool[index]);
      }
      idle.clear();
    }
    return -1;
  };

  // --preconnect: once every connection is open or failed, and hawker has had a moment to
  // accept them all, the first requests go out together (timed from their writes as always),
  // or with --rate the schedule starts.
  bool all_connected = false;
  auto start_when_all_connected = [&] {
    if (connected_conns != open_conns || all_connected) return;
    all_connected = true;
    timespec pause{0, 100'000'000};
    nanosleep(&pause, nullptr);
    if (open_loop) schedule_ns = now_ns();
    for (int j = 0; j < conns; ++j) {
      Conn& c = pool[static_cast<size_t>(j)];
      if (c.fd >= 0 && c.connected) next(c, static_cast<uint32_t>(j));
    }
  };

  std::vector<epoll_event> events(1024);
  while (open_conns > 0) {
    int until_due = dispatch();
    if (open_conns == 0) break;
    int wait_ms = until_due >= 0 ? until_due : 30'000;
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), wait_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    if (n == 0 && until_due >= 0) continue;  // an attempt is due
    if (n == 0) {
      std::fprintf(stderr, "hawker_bench_flash: no answer for 30 s, giving up\n");
      socket_errors += open_conns;
      break;
    }
    for (int k = 0; k < n; ++k) {
      uint32_t index = events[static_cast<size_t>(k)].data.u32;
      uint32_t what = events[static_cast<size_t>(k)].events;
      Conn& c = pool[index];
      if (c.fd < 0) continue;
      if (!c.connected) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || (what & (EPOLLERR | EPOLLHUP))) {
          ++socket_errors;
          close_conn(c);
          if (opt.preconnect) start_when_all_connected();
          continue;
        }
        c.connected = true;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = index;
        epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
        if (opt.preconnect) {
          ++connected_conns;
          start_when_all_connected();
        } else {
          next(c, index);
        }
        continue;
      }
      if (what & EPOLLOUT) {
        if (!flush(c, index)) {
          ++socket_errors;
          close_conn(c);
          continue;
        }
        if (c.sent == c.request.size()) {
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.u32 = index;
          epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
        }
      }
      if (!(what & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      if (c.in_used == c.in.size()) c.in.resize(c.in.size() * 2);
      ssize_t got = read(c.fd, c.in.data() + c.in_used, c.in.size() - c.in_used);
      if (got < 0 && errno == EAGAIN) continue;
      if (got <= 0) {
        ++socket_errors;
        close_conn(c);
        continue;
      }
      c.in_used += static_cast<size_t>(got);
      int status = 0;
      long length = answer_length(std::string_view(c.in.data(), c.in_used), status);
      if (length == 0) continue;
      if (length < 0 || static_cast<size_t>(length) != c.in_used) {
        // Not an answer this client understands, or bytes after it: no request of ours asked.
        ++socket_errors;
        close_conn(c);
        continue;
      }
      last_ns = now_ns();
      latencies_ns.push_back(last_ns - c.started_ns);
      if (!opt.dump.empty()) answers.push_back({c.started_ns, last_ns - c.started_ns, status});
      ++answered;
      if (status == 201) {
        ++created;
      } else if (status == 409) {
        ++refused;
      } else {
        ++other;
      }
      next(c, index);
    }
  }
  close(ep);

  if (!opt.dump.empty()) {
    FILE* f = std::fopen(opt.dump.c_str(), "w");
    if (f == nullptr) die("open --dump file");
    for (const Answer& a : answers) {
      std::fprintf(f, "%lld %lld %d\n", static_cast<long long>((a.started_ns - first_ns) / 1000),
                   static_cast<long long>(a.latency_ns / 1000), a.status);
    }
    std::fclose(f);
  }
  std::sort(latencies_ns.begin(), latencies_ns.end());
  auto percentile_us = [&](double p) -> long long {
    if (latencies_ns.empty()) return 0;
    // Nearest rank: the smallest latency at or above which p% of all are.
    size_t rank =
        static_cast<size_t>(p / 100.0 * static_cast<double>(latencies_ns.size()) + 0.999999);
    rank = std::clamp<size_t>(rank, 1, latencies_ns.size());
    return latencies_ns[rank - 1] / 1000;
  };
  std::printf(
      "RESULT {\"answered\": %ld, \"created\": %ld, \"refused\": %ld, \"other\": %ld, "
      "\"socket_errors\": %ld, \"duration_us\": %lld, \"p50_us\": %lld, \"p90_us\": %lld, "
      "\"p99_us\": %lld, \"max_us\": %lld}\n",
      answered, created, refused, other, socket_errors,
      static_cast<long long>((last_ns - first_ns) / 1000), percentile_us(50), percentile_us(90),
      percentile_us(99),
      latencies_ns.empty() ? 0LL : static_cast<long long>(latencies_ns.back() / 1000));
  return socket_errors == 0 ? 0 : 1;
}
