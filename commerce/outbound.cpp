#include "commerce/outbound.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include <array>
#include <cstring>
#include <unordered_map>

#include "core/clock.h"
#include "core/deleters.h"
#include "core/log.h"
#include "core/loop.h"

namespace hawker::commerce {
namespace {

constexpr const char* kLog = "outbound";

using EasyPtr = CPtr<CURL, curl_easy_cleanup>;
using HeaderList = CPtr<curl_slist, curl_slist_free_all>;
using UrlPtr = CPtr<CURLU, curl_url_cleanup>;

AddressClass classify_v4(uint32_t a) {
  auto in = [a](uint32_t net, int bits) {
    uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
    return (a & mask) == net;
  };
  if (in(0x00000000, 8)) return AddressClass::kUnspecified;
  if (in(0x7f000000, 8)) return AddressClass::kLoopback;
  if (in(0x0a000000, 8) || in(0xac100000, 12) || in(0xc0a80000, 16)) return AddressClass::kPrivate;
  if (in(0xa9fe0000, 16)) return AddressClass::kLinkLocal;
  if (in(0x64400000, 10)) return AddressClass::kSharedCgnat;
  if (in(0xe0000000, 4)) return AddressClass::kMulticast;
  if (in(0xf0000000, 4) || in(0xc0000000, 24) || in(0xc6120000, 15) || in(0xc0000200, 24) ||
      in(0xc6336400, 24) || in(0xcb007100, 24)) {
    return AddressClass::kReserved;
  }
  return AddressClass::kPublic;
}

uint32_t v4_at(const uint8_t* b) {
  return uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | uint32_t{b[3]};
}

AddressClass classify_v6(const uint8_t* b) {
  static constexpr uint8_t kZero[16] = {};
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static constexpr uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::memcmp(b, kZero, 16) == 0) return AddressClass::kUnspecified;
  if (std::memcmp(b, kZero, 15) == 0 && b[15] == 1) return AddressClass::kLoopback;
  // IPv4 inside IPv6 (mapped ::ffff:a.b.c.d, the deprecated compatible ::a.b.c.d, NAT64
  // 64:ff9b::a.b.c.d) reaches the IPv4 address, so it is judged as that address.
  if (std::memcmp(b, kMapped, 12) == 0 || std::memcmp(b, kZero, 12) == 0 ||
      std::memcmp(b, kNat64, 12) == 0) {
    return classify_v4(v4_at(b + 12));
  }
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return AddressClass::kLinkLocal;
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return AddressClass::kPrivate;  // site-local
  if ((b[0] & 0xfe) == 0xfc) return AddressClass::kUniqueLocal;
  if (b[0] == 0xff) return AddressClass::kMulticast;
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return AddressClass::kReserved;
  return AddressClass::kPublic;
}

std::string address_text(const sockaddr* addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, buf, sizeof(buf));
  } else if (addr->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

const char* to_string(AddressClass c) {
  switch (c) {
    case AddressClass::kPublic:
      return "public";
    case AddressClass::kUnspecified:
      return "unspecified";
    case AddressClass::kLoopback:
      return "loopback";
    case AddressClass::kPrivate:
      return "private";
    case AddressClass::kLinkLocal:
      return "link-local";
    case AddressClass::kSharedCgnat:
      return "shared (CGNAT)";
    case AddressClass::kUniqueLocal:
      return "unique local";
    case AddressClass::kMulticast:
      return "multicast";
    case AddressClass::kReserved:
      return "reserved";
  }
  return "unknown";
}

AddressClass classify_address(const sockaddr* addr) {
  if (addr->sa_family == AF_INET) {
    return classify_v4(ntohl(reinterpret_cast<const sockaddr_in*>(addr)->sin_addr.s_addr));
  }
  if (addr->sa_family == AF_INET6) {
    return classify_v6(reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr.s6_addr);
  }
  return AddressClass::kReserved;
}

std::optional<AddressClass> classify_address(std::string_view ip) {
  std::string text(ip);
  if (auto pct = text.find('%'); pct != std::string::npos) text.resize(pct);  // zone id
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return classify_v4(ntohl(v4.s_addr));
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) return classify_v6(v6.s6_addr);
  return std::nullopt;
}

Status check_outbound_url(std::string_view url, bool allow_private) {
  UrlPtr u(curl_url());
  if (!u) return unexpected(ErrorCode::kInternal, "out of memory");
  std::string text(url);
  if (curl_url_set(u.get(), CURLUPART_URL, text.c_str(), 0) != CURLUE_OK) {
    return unexpected(ErrorCode::kInvalidArgument, "not a valid absolute URL");
  }
  char* scheme = nullptr;
  char* host = nullptr;
  curl_url_get(u.get(), CURLUPART_SCHEME, &scheme, 0);
  curl_url_get(u.get(), CURLUPART_HOST, &host, 0);
  std::string s = scheme != nullptr ? scheme : "";
  std::string h = host != nullptr ? host : "";
  curl_free(scheme);
  curl_free(host);
  if (s != "http" && s != "https") {
    return unexpected(ErrorCode::kInvalidArgument, "only http and https URLs are allowed");
  }
  if (h.empty()) return unexpected(ErrorCode::kInvalidArgument, "the URL has no host");
  if (h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (!allow_private) {
    if (auto c = classify_address(h); c && *c != AddressClass::kPublic) {
      return unexpected(
          ErrorCode::kPermissionDenied,
          fmt::format("{} is a {} address (webhooks.allow-private is false)", h, to_string(*c)));
    }
    if (h == "localhost" || h.ends_with(".localhost")) {
      return unexpected(ErrorCode::kPermissionDenied,
                        "localhost is a loopback address (webhooks.allow-private is false)");
    }
  }
  return ok_status();
}

/// One request from queueing to answer. Lives on the worker thread once queued.
struct OutboundClient::Transfer {
  OutboundRequest request;
  Done done;
  const OutboundOptions* options = nullptr;
  EasyPtr easy;
  HeaderList headers;
  std::string body_kept;
  size_t body_read = 0;
  bool cut = false;
  std::optional<std::string> retry_after;
  std::string blocked;
  int64_t start_ms = 0;
  std::array<char, CURL_ERROR_SIZE> error{};

  static size_t on_body(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    size_t bytes = size * n;
    t->body_read += bytes;
    if (t->body_kept.size() < t->options->max_body_kept) {
      t->body_kept.append(data, std::min(bytes, t->options->max_body_kept - t->body_kept.size()));
    }
    if (t->body_read > t->options->max_body_read) {
      t->cut = true;
      return 0;
    }
    return bytes;
  }

  static size_t on_header(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    std::string_view line(data, size * n);
    if (starts_with_nocase(line, "HTTP/")) t->retry_after.reset();  // a new response (after 1xx)
    if (starts_with_nocase(line, "retry-after:")) t->retry_after = trim(line.substr(12));
    return size * n;
  }

  static curl_socket_t on_open_socket(void* user, curlsocktype, curl_sockaddr* address) {
    auto* t = static_cast<Transfer*>(user);
    if (!t->options->allow_private) {
      AddressClass c = classify_address(&address->addr);
      if (c != AddressClass::kPublic) {
        t->blocked = fmt::format("{} is a {} address", address_text(&address->addr), to_string(c));
        return CURL_SOCKET_BAD;
      }
    }
    return ::socket(address->family, address->socktype, address->protocol);
  }

  Status setup() {
    easy.reset(curl_easy_init());
    if (!easy) return unexpected(ErrorCode::kInternal, "curl_easy_init failed");
    CURL* e = easy.get();
    curl_slist* list = nullptr;
    for (const auto& [name, value] : request.headers) {
      list = curl_slist_append(list, fmt::format("{}: {}", name, value).c_str());
    }
    // Without this curl waits for "100 Continue" before sending bodies over 1 KiB.
    list = curl_slist_append(list, "Expect:");
    headers.reset(list);
    curl_easy_setopt(e, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options->connect_timeout_ms));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(options->total_timeout_ms));
    curl_easy_setopt(e, CURLOPT_USERAGENT, options->user_agent.c_str());
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Transfer::on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, this);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &Transfer::on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, this);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error.data());
    curl_easy_setopt(e, CURLOPT_PRIVATE, this);
    start_ms = SystemClock::instance().steady_ms();
    return ok_status();
  }
};

OutboundClient::OutboundClient(Loop& loop, OutboundOptions options)
    : loop_(loop), options_(std::move(options)) {}

OutboundClient::~OutboundClient() { stop(); }

Status OutboundClient::start() {
  static std::once_flag once;
  static CURLcode global_rc = CURLE_OK;
  std::call_once(once, [] { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (global_rc != CURLE_OK) {
    return unexpected(ErrorCode::kInternal,
                      fmt::format("curl_global_init: {}", curl_easy_strerror(global_rc)));
  }
  multi_ = curl_multi_init();
  if (multi_ == nullptr) return unexpected(ErrorCode::kInternal, "curl_multi_init failed");
  mailbox_ = std::make_unique<Mailbox>(loop_);
  started_ = true;
  worker_ = std::thread([this] { worker_main(); });
  return ok_status();
}

void OutboundClient::stop() {
  if (!started_) return;
  started_ = false;
  {
    std::lock_guard lock(queue_.mutex);
    queue_.stopping = true;
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
  worker_.join();
  mailbox_->close();
  curl_multi_cleanup(static_cast<CURLM*>(multi_));
  multi_ = nullptr;
  in_flight_ = 0;
}

void OutboundClient::post(OutboundRequest request, Done done) {
  if (!started_) {
    done(unexpected(ErrorCode::kUnavailable, "the outbound client is stopped"));
    return;
  }
  auto t = std::make_unique<Transfer>();
  t->request = std::move(request);
  t->done = std::move(done);
  t->options = &options_;
  ++in_flight_;
  {
    std::lock_guard lock(queue_.mutex);
    queue_.pending.push_back(std::move(t));
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

void OutboundClient::finish(Transfer& t, int curl_code) {
  auto code = static_cast<CURLcode>(curl_code);
  int64_t duration = SystemClock::instance().steady_ms() - t.start_ms;
  long status = 0;
  curl_easy_getinfo(t.easy.get(), CURLINFO_RESPONSE_CODE, &status);
  Result<OutboundResponse> result = OutboundResponse{};
  if (code == CURLE_OK || (t.cut && code == CURLE_WRITE_ERROR && status > 0)) {
    OutboundResponse r;
    r.status = static_cast<int>(status);
    r.body = std::move(t.body_kept);
    r.retry_after = std::move(t.retry_after);
    r.duration_ms = duration;
    result = std::move(r);
  } else if (!t.blocked.empty()) {
    result = unexpected(
        ErrorCode::kPermissionDenied,
        fmt::format("refused to connect: {} (webhooks.allow-private is false)", t.blocked));
  } else {
    std::string detail =
        t.error[0] != '\0' ? std::string(t.error.data()) : curl_easy_strerror(code);
    ErrorCode ec = code == CURLE_OPERATION_TIMEDOUT ? ErrorCode::kUnavailable
                   : code == CURLE_UNSUPPORTED_PROTOCOL || code == CURLE_URL_MALFORMAT
                       ? ErrorCode::kInvalidArgument
                       : ErrorCode::kUnavailable;
    result = unexpected(ec, detail);
  }
  auto shared = std::make_shared<Result<OutboundResponse>>(std::move(result));
  mailbox_->post([this, done = std::move(t.done), shared, duration]() {
    if (in_flight_ > 0) --in_flight_;
    if (!*shared) {
      log::debug(kLog, "outbound request failed after {} ms: {}", duration,
                 shared->error().message);
    }
    done(std::move(*shared));
  });
}

void OutboundClient::worker_main() {
  set_thread_name("outbound-http");
  auto* multi = static_cast<CURLM*>(multi_);
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> active;
  while (true) {
    std::deque<std::unique_ptr<Transfer>> fresh;
    {
      std::lock_guard lock(queue_.mutex);
      if (queue_.stopping) break;
      fresh.swap(queue_.pending);
    }
    for (auto& t : fresh) {
      if (auto s = t->setup(); !s) {
        auto err = std::make_shared<Error>(s.error());
        mailbox_->post([this, done = std::move(t->done), err] {
          if (in_flight_ > 0) --in_flight_;
          done(unexpected(*err));
        });
        continue;
      }
      CURL* easy = t->easy.get();
      curl_multi_add_handle(multi, easy);
      active.emplace(easy, std::move(t));
    }
    int running = 0;
    curl_multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      CURLcode rc = msg->data.result;
      auto it = active.find(easy);
      curl_multi_remove_handle(multi, easy);
      if (it == active.end()) continue;
      finish(*it->second, rc);
      active.erase(it);
    }
    curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
  }
  for (auto& [easy, t] : active) curl_multi_remove_handle(multi, easy);
}

}  // namespace hawker::commerce
