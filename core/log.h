#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace hawker::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class Format { kText, kJson };

/// Process-wide settings; set once at start, before threads exist.
void configure(Level level, Format format);
bool enabled(Level level);
bool parse_level(std::string_view s, Level& out);
const char* level_name(Level level);

/// Writes one line to stderr. `component` names the module ("http", "rtmp"); callers put
/// connection or stream ids in the message ("conn=12 ..."). Secrets never reach here: they are
/// held in `Secret` (core/secret.h), whose formatter prints a placeholder.
void write(Level level, std::string_view component, std::string_view message);

template <typename... Args>
void debug(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kDebug))
    write(Level::kDebug, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kInfo))
    write(Level::kInfo, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kWarn))
    write(Level::kWarn, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kError))
    write(Level::kError, component, fmt::format(f, std::forward<Args>(args)...));
}

/// JSON string escaping shared by the JSON log format and small hand-written JSON.
std::string json_escape(std::string_view s);
/// The same, appended to `out` (no allocation when `out` has room): for JSON written on hot paths.
void append_json_escaped(fmt::memory_buffer& out, std::string_view s);
/// How many bytes json_escape(s) makes, without making them. The same escapes as nlohmann's
/// dump, so a JSON string's printed size is this plus its two quotes.
size_t json_escaped_size(std::string_view s);

}  // namespace hawker::log
