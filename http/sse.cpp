#include "http/sse.h"

#include <fmt/format.h>

namespace hawker::http {

namespace {

std::string single_line(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != '\r' && c != '\n' && c != '\0') out += c;
  }
  return out;
}

}  // namespace

std::string format_sse(const SseEvent& event) {
  std::string out;
  if (!event.id.empty()) out += "id: " + single_line(event.id) + "\n";
  if (!event.event.empty()) out += "event: " + single_line(event.event) + "\n";
  if (event.retry_ms) out += fmt::format("retry: {}\n", *event.retry_ms);
  std::string_view data = event.data;
  size_t pos = 0;
  while (true) {
    size_t end = data.find_first_of("\r\n", pos);
    std::string_view line =
        data.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    out += "data: ";
    out += line;
    out += '\n';
    if (end == std::string_view::npos) break;
    pos = end + 1;
    if (data[end] == '\r' && pos < data.size() && data[pos] == '\n') ++pos;
  }
  out += '\n';
  return out;
}

std::string format_sse_comment(std::string_view text) { return ": " + single_line(text) + "\n\n"; }

std::optional<std::string> last_event_id(const Request& request) {
  if (auto h = request.header("Last-Event-ID")) return std::string(*h);
  return request.query("lastEventId");
}

Headers sse_headers() {
  Headers h;
  h.add("Content-Type", "text/event-stream; charset=utf-8");
  h.add("Cache-Control", "no-cache, no-store");
  h.add("X-Accel-Buffering", "no");
  return h;
}

}  // namespace hawker::http
