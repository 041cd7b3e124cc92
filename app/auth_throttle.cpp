#include "app/auth_throttle.h"

#include <algorithm>
#include <vector>

namespace hawker::app {

int64_t AuthThrottle::delay_ms(const std::string& address, int64_t now_ms) {
  auto it = entries_.find(address);
  if (it == entries_.end()) return 0;
  if (now_ms - it->second.last_failure_ms > options_.window_ms) {
    entries_.erase(it);
    return 0;
  }
  int over = it->second.failures - options_.free_failures;
  if (over < 0) return 0;
  int64_t delay = options_.base_delay_ms << std::min(over, 20);
  return std::min(delay, options_.max_delay_ms);
}

void AuthThrottle::record_failure(const std::string& address, int64_t now_ms) {
  if (entries_.size() >= options_.max_tracked && !entries_.count(address)) evict(now_ms);
  Entry& e = entries_[address];
  if (now_ms - e.last_failure_ms > options_.window_ms) e.failures = 0;
  ++e.failures;
  e.last_failure_ms = now_ms;
}

void AuthThrottle::evict(int64_t now_ms) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = now_ms - it->second.last_failure_ms > options_.window_ms ? entries_.erase(it)
                                                                  : std::next(it);
  }
  // Still full (a wide attack): forget the oldest half rather than grow without bound.
  if (entries_.size() >= options_.max_tracked) {
    std::vector<std::pair<int64_t, std::string>> by_age;
    for (const auto& [k, v] : entries_) by_age.emplace_back(v.last_failure_ms, k);
    std::sort(by_age.begin(), by_age.end());
    for (size_t i = 0; i < by_age.size() / 2; ++i) entries_.erase(by_age[i].second);
  }
}

std::string AuthThrottle::host_of(std::string_view remote) {
  if (!remote.empty() && remote.front() == '[') {
    size_t close = remote.find(']');
    return std::string(
        remote.substr(1, close == std::string_view::npos ? remote.size() - 1 : close - 1));
  }
  size_t colon = remote.rfind(':');
  if (colon != std::string_view::npos && remote.find(':') == colon)
    return std::string(remote.substr(0, colon));
  return std::string(remote);
}

}  // namespace hawker::app
