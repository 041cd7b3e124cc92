#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "http/request.h"

namespace hawker::http {

struct ParserLimits {
  /// Request line plus header fields; more gets 414 (long target) or 431.
  size_t max_header_bytes = 16 * 1024;
  /// Decoded body bytes (Content-Length or the sum of chunks); more gets 413.
  size_t max_body_bytes = 1024 * 1024;
};

/// Why a request could not be parsed: the status and problem to answer with before closing.
struct ParseError {
  int status = 400;
  std::string slug = "bad-request";
  std::string title = "Bad request";
  std::string detail;
};

/// Where the parser stands in the current message; the connection picks its timeout from it.
enum class ParsePhase { kIdle, kHeaders, kBody };

/// Turns bytes into Requests with llhttp and no socket, so the server, the tests and the fuzz
/// target share one piece of glue. One parser per connection; it parses one message at a time so
/// the caller decides when to take the next pipelined request.
class RequestParser {
 public:
  explicit RequestParser(ParserLimits limits = {});
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  struct Outcome {
    /// Bytes of the input used; the caller feeds the rest again later.
    size_t consumed = 0;
    /// Set when a request was completed by these bytes.
    std::optional<Request> request;
    /// Set when the input is not valid HTTP/1.1 or breaks a limit; the parser then stays failed.
    std::optional<ParseError> error;
  };

  /// Parses until one request is complete, an error is found or the bytes run out.
  Outcome feed(std::span<const uint8_t> data);

  ParsePhase phase() const { return phase_; }
  bool failed() const { return failed_.has_value(); }
  /// True once per request whose headers asked for `Expect: 100-continue` before its body.
  bool take_expect_continue();
  /// After an Upgrade/CONNECT request the rest of the stream is not HTTP; nothing more is parsed.
  bool upgraded() const { return upgraded_; }

 private:
  /// llhttp callbacks: captureless lambdas that forward to the handle_* members.
  static const llhttp_settings_t& settings();

  int handle_message_begin();
  int handle_url(const char* at, size_t len);
  int handle_header_field(const char* at, size_t len);
  int handle_header_value(const char* at, size_t len);
  int handle_headers_complete();
  int handle_body(const char* at, size_t len);
  int handle_message_complete();
  int fail(ParseError error);
  bool count_header_bytes(size_t len);

  ParserLimits limits_;
  llhttp_t parser_;
  ParsePhase phase_ = ParsePhase::kIdle;
  Request current_;
  std::string field_;
  std::string value_;
  bool in_value_ = false;
  size_t header_bytes_ = 0;
  bool expect_continue_ = false;
  bool upgraded_ = false;
  std::optional<Request> completed_;
  std::optional<ParseError> failed_;
};

/// Splits a request target into raw path and raw query and decodes the path; nullopt when the
/// target is not origin-form, absolute-form or "*", or decodes to a NUL byte.
struct Target {
  std::string raw_path;
  std::string path;
  std::string raw_query;
};
std::optional<Target> split_target(std::string_view target);

}  // namespace hawker::http
