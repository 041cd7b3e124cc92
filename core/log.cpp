#include "core/log.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>

namespace hawker::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<int> g_format{static_cast<int>(Format::kText)};
std::mutex g_write_mutex;

std::string timestamp() {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto secs = time_point_cast<seconds>(now);
  auto ms = duration_cast<milliseconds>(now - secs).count();
  std::time_t t = system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

}  // namespace

void configure(Level level, Format format) {
  g_level.store(static_cast<int>(level));
  g_format.store(static_cast<int>(format));
}

bool enabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

const char* level_name(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

bool parse_level(std::string_view s, Level& out) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (s == level_name(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

namespace {

bool needs_escape(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }

/// Whether any of the eight bytes at `p` needs an escape, tested on all eight at once: a byte
/// below 0x20 borrows into its high bit when 0x20 is subtracted, and a quote or backslash
/// becomes zero when xored with itself (the classic "has a byte less than n" word tricks,
/// exact as a yes or no).
bool any_needs_escape(const char* p) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHighs = 0x8080808080808080ULL;
  uint64_t w;
  std::memcpy(&w, p, sizeof w);
  auto below = [&](uint64_t x, uint64_t n) { return (x - kOnes * n) & ~x & kHighs; };
  return (below(w, 0x20) | below(w ^ (kOnes * '"'), 1) | below(w ^ (kOnes * '\\'), 1)) != 0;
}

/// The length of the run at the start of `s` that needs no escape, measured eight bytes at a
/// time (names, addresses and ids seldom hold a byte to escape).
size_t plain_prefix(std::string_view s) {
  size_t i = 0;
  while (i + 8 <= s.size() && !any_needs_escape(s.data() + i)) i += 8;
  while (i < s.size() && !needs_escape(static_cast<unsigned char>(s[i]))) ++i;
  return i;
}

/// The two-byte escape of a byte that needs one, or empty for the other control bytes, which
/// are written as \u00XX.
std::string_view short_escape(unsigned char c) {
  switch (c) {
    case '"':
      return "\\\"";
    case '\\':
      return "\\\\";
    case '\b':
      return "\\b";
    case '\f':
      return "\\f";
    case '\n':
      return "\\n";
    case '\r':
      return "\\r";
    case '\t':
      return "\\t";
    default:
      return {};
  }
}

}  // namespace

void append_json_escaped(fmt::memory_buffer& out, std::string_view s) {
  while (!s.empty()) {
    size_t plain = plain_prefix(s);
    out.append(s.substr(0, plain));
    if (plain == s.size()) break;
    auto c = static_cast<unsigned char>(s[plain]);
    std::string_view escape = short_escape(c);
    if (!escape.empty()) {
      out.append(escape);
    } else {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
    }
    s.remove_prefix(plain + 1);
  }
}

size_t json_escaped_size(std::string_view s) {
  size_t n = 0;
  while (!s.empty()) {
    size_t plain = plain_prefix(s);
    n += plain;
    if (plain == s.size()) break;
    n += short_escape(static_cast<unsigned char>(s[plain])).empty() ? 6 : 2;
    s.remove_prefix(plain + 1);
  }
  return n;
}

std::string json_escape(std::string_view s) {
  fmt::memory_buffer out;
  append_json_escaped(out, s);
  return fmt::to_string(out);
}

void write(Level level, std::string_view component, std::string_view message) {
  std::string line;
  if (g_format.load(std::memory_order_relaxed) == static_cast<int>(Format::kJson)) {
    line = fmt::format(R"({{"ts":"{}","level":"{}","component":"{}","msg":"{}"}})", timestamp(),
                       level_name(level), json_escape(component), json_escape(message));
  } else {
    line = fmt::format("{} {:<5} [{}] {}", timestamp(), level_name(level), component, message);
  }
  line += '\n';
  std::lock_guard lock(g_write_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace hawker::log
