#pragma once

#include <sys/socket.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/loop.h"
#include "core/result.h"

namespace hawker::commerce {

/// Where an IP address points, for refusing requests into the seller's own network (SSRF).
enum class AddressClass {
  kPublic,
  kUnspecified,  ///< 0.0.0.0/8, ::
  kLoopback,     ///< 127/8, ::1
  kPrivate,      ///< 10/8, 172.16/12, 192.168/16
  kLinkLocal,    ///< 169.254/16, fe80::/10
  kSharedCgnat,  ///< 100.64/10
  kUniqueLocal,  ///< fc00::/7
  kMulticast,    ///< 224/4, ff00::/8
  kReserved,     ///< 240/4 (with broadcast), 192.0.0/24, 198.18/15, documentation ranges
};

const char* to_string(AddressClass c);

/// Classifies an IPv4 or IPv6 socket address; IPv4-mapped and -compatible IPv6 (::ffff:a.b.c.d)
/// are judged by the IPv4 address inside.
AddressClass classify_address(const sockaddr* addr);
/// Classifies a textual address ("10.0.0.1", "::1"); nullopt when it is not an IP literal.
std::optional<AddressClass> classify_address(std::string_view ip);

/// Checks a URL before anything is sent: http or https, a host, and (unless `allow_private`) no
/// literal address outside the public internet. Names are checked again at connect time, on
/// every address they resolve to.
Status check_outbound_url(std::string_view url, bool allow_private);

struct OutboundRequest {
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  ///< sent with POST
};

struct OutboundResponse {
  int status = 0;
  /// The start of the response body, at most OutboundOptions::max_body_kept bytes.
  std::string body;
  std::optional<std::string> retry_after;
  int64_t duration_ms = 0;
};

struct OutboundOptions {
  /// Whether loopback and private addresses may be reached (tests, a receiver on the LAN).
  bool allow_private = false;
  int64_t connect_timeout_ms = 5'000;
  int64_t total_timeout_ms = 15'000;
  /// Response bytes read before the transfer is cut (the status is kept).
  size_t max_body_read = 64 * 1024;
  /// Response bytes kept for the caller.
  size_t max_body_kept = 1024;
  std::string user_agent = "hawker-webhooks/" HAWKER_VERSION;
};

/// POSTs requests with libcurl's multi interface on a thread of its own, so neither DNS nor a
/// slow receiver ever blocks the loop; answers come back on the loop through a Mailbox. No
/// redirect is followed, proxies from the environment are ignored, only http and https are
/// spoken, and each address curl is about to connect to is checked (so a name resolving to a
/// private address is refused too, with no window between the check and the connect).
class OutboundClient {
 public:
  using Done = std::function<void(Result<OutboundResponse>)>;

  OutboundClient(Loop& loop, OutboundOptions options);
  ~OutboundClient();
  OutboundClient(const OutboundClient&) = delete;
  OutboundClient& operator=(const OutboundClient&) = delete;

  /// Starts the worker thread.
  Status start();
  /// Stops the thread; transfers in flight are dropped and their callbacks never run. Loop
  /// thread; idempotent.
  void stop();

  /// Queues a POST. `done` runs on the loop with the response (any status) or the error
  /// (refused address, connect failure, timeout). Refused at once with kUnavailable when stopped.
  void post(OutboundRequest request, Done done);

  size_t in_flight() const { return in_flight_; }

 private:
  struct Transfer;
  struct Queue {
    std::mutex mutex;
    std::deque<std::unique_ptr<Transfer>> pending;
    bool stopping = false;
  };

  void worker_main();
  void finish(Transfer& t, int curl_code);

  Loop& loop_;
  OutboundOptions options_;
  std::unique_ptr<Mailbox> mailbox_;
  Queue queue_;
  void* multi_ = nullptr;  // CURLM*, owned: cleaned up in stop()
  std::thread worker_;
  size_t in_flight_ = 0;
  bool started_ = false;
};

}  // namespace hawker::commerce
