#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "http/request.h"

namespace hawker::http {

/// One Server-Sent Event (WHATWG HTML, "Server-sent events").
struct SseEvent {
  /// Becomes the client's Last-Event-ID; empty sends no id line.
  std::string id;
  /// Event type; empty means the default "message".
  std::string event;
  /// Payload; each line becomes its own `data:` line.
  std::string data;
  /// Reconnection delay to ask of the client, in milliseconds.
  std::optional<int> retry_ms;
};

/// The wire form of `event`, ending with the blank line that dispatches it. CR and LF in id and
/// event are dropped (they would end the field early); CRLF, CR and LF in data split lines.
std::string format_sse(const SseEvent& event);

/// A comment line (": text"), which clients ignore: sent as a keep-alive through proxies.
std::string format_sse_comment(std::string_view text = {});

/// The id the client last saw: the Last-Event-ID header on reconnection, else the
/// `lastEventId` query parameter (for clients that cannot set headers).
std::optional<std::string> last_event_id(const Request& request);

/// Headers for an event stream: text/event-stream, no caching, no proxy buffering.
Headers sse_headers();

}  // namespace hawker::http
