#include "core/clock.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <ctime>

namespace hawker {

int64_t SystemClock::steady_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

int64_t SystemClock::wall_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

SystemClock& SystemClock::instance() {
  static SystemClock clock;
  return clock;
}

namespace {
std::tm to_tm(int64_t wall_ms) {
  std::time_t t = static_cast<std::time_t>(wall_ms >= 0 ? wall_ms / 1000 : (wall_ms - 999) / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return tm;
}
}  // namespace

void append_rfc3339_ms(fmt::memory_buffer& out, int64_t wall_ms) {
  // Every order prints three of these on the storage thread: its creation time twice and the
  // end of its payment window, nearly always within the same two seconds. The date and time up
  // to the second are formatted once per second (two seconds kept per thread), the
  // milliseconds each time.
  struct Second {
    int64_t second = INT64_MIN;
    char text[32];
    size_t size = 0;
  };
  thread_local Second cached[2];
  thread_local unsigned next_slot = 0;
  int64_t second = wall_ms >= 0 ? wall_ms / 1000 : (wall_ms - 999) / 1000;
  Second* hit = cached[0].second == second   ? &cached[0]
                : cached[1].second == second ? &cached[1]
                                             : nullptr;
  if (hit == nullptr) {
    hit = &cached[next_slot];
    next_slot ^= 1;
    std::tm tm = to_tm(wall_ms);
    auto end = fmt::format_to_n(hit->text, sizeof hit->text - 1,
                                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.", tm.tm_year + 1900,
                                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    hit->size = std::min(end.size, sizeof hit->text - 1);
    hit->second = second;
  }
  int64_t ms = wall_ms - second * 1000;
  char tail[4] = {static_cast<char>('0' + ms / 100), static_cast<char>('0' + ms / 10 % 10),
                  static_cast<char>('0' + ms % 10), 'Z'};
  out.append(hit->text, hit->text + hit->size);
  out.append(tail, tail + sizeof tail);
}

std::string format_rfc3339_ms(int64_t wall_ms) {
  fmt::memory_buffer out;
  append_rfc3339_ms(out, wall_ms);
  return fmt::to_string(out);
}

std::string format_rfc3339(int64_t wall_ms) {
  std::tm tm = to_tm(wall_ms);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

bool parse_rfc3339(const std::string& text, int64_t& wall_ms) {
  int y, mo, d, h, mi, s;
  int n = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6 ||
      n != 19) {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return false;
  size_t i = 19;
  int64_t frac_ms = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    int digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (digits < 3) frac_ms = frac_ms * 10 + (text[i] - '0');
      ++digits;
      ++i;
    }
    if (digits == 0) return false;
    for (int k = digits; k < 3; ++k) frac_ms *= 10;
  }
  int64_t offset_s = 0;
  if (i < text.size() && (text[i] == 'Z' || text[i] == 'z')) {
    ++i;
  } else if (i + 6 == text.size() && (text[i] == '+' || text[i] == '-') && text[i + 3] == ':') {
    int oh = 0, om = 0;
    if (std::sscanf(text.c_str() + i + 1, "%2d:%2d", &oh, &om) != 2) return false;
    offset_s = (oh * 3600 + om * 60) * (text[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return false;
  }
  if (i != text.size()) return false;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  std::time_t t = timegm(&tm);
  wall_ms = (static_cast<int64_t>(t) - offset_s) * 1000 + frac_ms;
  return true;
}

}  // namespace hawker
