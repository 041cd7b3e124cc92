#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace hawker {

/// Time as the rest of the code sees it: injectable so tests control it.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Monotonic milliseconds, for timeouts and intervals.
  virtual int64_t steady_ms() const = 0;
  /// Wall clock, milliseconds since the Unix epoch, for timestamps users see.
  virtual int64_t wall_ms() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t steady_ms() const override;
  int64_t wall_ms() const override;
  static SystemClock& instance();
};

/// A clock that moves only when told to; for tests.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t wall_ms = 1'700'000'000'000) : wall_(wall_ms) {}
  int64_t steady_ms() const override { return steady_; }
  int64_t wall_ms() const override { return wall_; }
  void advance_ms(int64_t ms) {
    steady_ += ms;
    wall_ += ms;
  }

 private:
  int64_t steady_ = 0;
  int64_t wall_;
};

/// RFC 3339 UTC with milliseconds: 2026-11-22T10:00:00.000Z.
std::string format_rfc3339_ms(int64_t wall_ms);
/// The same, appended to `out`.
void append_rfc3339_ms(fmt::memory_buffer& out, int64_t wall_ms);
/// RFC 3339 UTC with whole seconds: 2026-11-22T10:00:00Z.
std::string format_rfc3339(int64_t wall_ms);
/// Parses RFC 3339 (Z or +hh:mm offset, optional fraction); returns false on a bad form.
bool parse_rfc3339(const std::string& text, int64_t& wall_ms);

}  // namespace hawker
