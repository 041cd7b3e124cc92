#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

namespace hawker::app {

/// Slows down an address that keeps presenting wrong credentials (stream keys, passwords):
/// after `free_failures` failures within `window_ms`, each further attempt waits twice as long
/// as the one before, up to `max_delay_ms`. A success clears the address.
class AuthThrottle {
 public:
  struct Options {
    int free_failures = 3;
    int64_t window_ms = 10 * 60 * 1000;
    int64_t base_delay_ms = 1000;
    int64_t max_delay_ms = 30'000;
    size_t max_tracked = 10'000;
  };
  AuthThrottle() : AuthThrottle(Options{}) {}
  explicit AuthThrottle(Options options) : options_(options) {}

  /// How long to wait before answering an attempt from `address` now.
  int64_t delay_ms(const std::string& address, int64_t now_ms);
  void record_failure(const std::string& address, int64_t now_ms);
  void record_success(const std::string& address) { entries_.erase(address); }
  size_t tracked() const { return entries_.size(); }

  /// The host part of "host:port" or "[v6]:port".
  static std::string host_of(std::string_view remote);

 private:
  struct Entry {
    int failures = 0;
    int64_t last_failure_ms = 0;
  };
  void evict(int64_t now_ms);

  Options options_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace hawker::app
