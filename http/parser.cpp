#include "http/parser.h"

#include <fmt/format.h>

namespace hawker::http {

namespace {

RequestParser* self(llhttp_t* p) { return static_cast<RequestParser*>(p->data); }

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

bool header_has_token(std::string_view value, std::string_view token) {
  size_t pos = 0;
  while (pos <= value.size()) {
    size_t comma = value.find(',', pos);
    if (comma == std::string_view::npos) comma = value.size();
    std::string_view item = value.substr(pos, comma - pos);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (iequals(item, token)) return true;
    pos = comma + 1;
  }
  return false;
}

}  // namespace

std::optional<Target> split_target(std::string_view target) {
  if (target == "*") return Target{"*", "*", ""};
  std::string_view rest = target;
  if (starts_with_ci(rest, "http://") || starts_with_ci(rest, "https://")) {
    size_t authority = rest.find("//") + 2;
    size_t slash = rest.find_first_of("/?", authority);
    rest = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    if (!rest.empty() && rest.front() == '?') return std::nullopt;
  }
  if (rest.empty() || rest.front() != '/') return std::nullopt;
  rest = rest.substr(0, rest.find('#'));
  Target t;
  size_t q = rest.find('?');
  t.raw_path = std::string(rest.substr(0, q));
  if (q != std::string_view::npos) t.raw_query = std::string(rest.substr(q + 1));
  auto decoded = percent_decode(t.raw_path, false);
  if (!decoded) return std::nullopt;
  t.path = std::move(*decoded);
  return t;
}

const llhttp_settings_t& RequestParser::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t st;
    llhttp_settings_init(&st);
    st.on_message_begin = [](llhttp_t* p) { return self(p)->handle_message_begin(); };
    st.on_url = [](llhttp_t* p, const char* at, size_t len) {
      return self(p)->handle_url(at, len);
    };
    st.on_header_field = [](llhttp_t* p, const char* at, size_t len) {
      return self(p)->handle_header_field(at, len);
    };
    st.on_header_value = [](llhttp_t* p, const char* at, size_t len) {
      return self(p)->handle_header_value(at, len);
    };
    st.on_headers_complete = [](llhttp_t* p) { return self(p)->handle_headers_complete(); };
    st.on_body = [](llhttp_t* p, const char* at, size_t len) {
      return self(p)->handle_body(at, len);
    };
    st.on_message_complete = [](llhttp_t* p) { return self(p)->handle_message_complete(); };
    return st;
  }();
  return s;
}

RequestParser::RequestParser(ParserLimits limits) : limits_(limits) {
  llhttp_init(&parser_, HTTP_REQUEST, &settings());
  parser_.data = this;
}

bool RequestParser::take_expect_continue() {
  bool e = expect_continue_;
  expect_continue_ = false;
  return e;
}

RequestParser::Outcome RequestParser::feed(std::span<const uint8_t> data) {
  Outcome out;
  if (failed_) {
    out.error = failed_;
    return out;
  }
  if (upgraded_) {
    out.consumed = data.size();
    return out;
  }
  const char* begin = reinterpret_cast<const char*>(data.data());
  llhttp_errno_t err = llhttp_execute(&parser_, begin, data.size());
  switch (err) {
    case HPE_OK:
      out.consumed = data.size();
      break;
    case HPE_PAUSED:
      // Paused by handle_message_complete: one request is done, the rest waits for the caller.
      out.consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - begin);
      llhttp_resume(&parser_);
      break;
    case HPE_PAUSED_UPGRADE:
      upgraded_ = true;
      out.consumed = data.size();
      break;
    default:
      // A callback that refused the input has already set failed_ with its own status; llhttp
      // reports that as HPE_USER or as that callback's error code.
      if (failed_) break;
      fail(ParseError{400, "bad-request", "Bad request",
                      fmt::format("malformed HTTP: {}", llhttp_errno_name(err))});
      break;
  }
  if (failed_) {
    out.error = failed_;
    out.consumed = data.size();
    return out;
  }
  if (completed_) {
    out.request = std::move(completed_);
    completed_.reset();
  }
  return out;
}

int RequestParser::fail(ParseError error) {
  failed_ = std::move(error);
  return HPE_USER;
}

bool RequestParser::count_header_bytes(size_t len) {
  header_bytes_ += len;
  return header_bytes_ <= limits_.max_header_bytes;
}

int RequestParser::handle_message_begin() {
  phase_ = ParsePhase::kHeaders;
  current_ = Request{};
  field_.clear();
  value_.clear();
  in_value_ = false;
  header_bytes_ = 0;
  expect_continue_ = false;
  return 0;
}

int RequestParser::handle_url(const char* at, size_t len) {
  if (!count_header_bytes(len)) {
    return fail(
        ParseError{414, "uri-too-long", "URI too long",
                   fmt::format("the request target exceeds {} bytes", limits_.max_header_bytes)});
  }
  current_.target.append(at, len);
  return 0;
}

int RequestParser::handle_header_field(const char* at, size_t len) {
  // Four bytes per field for ": " and CRLF keep many tiny fields from slipping under the limit.
  if (!count_header_bytes(len + (in_value_ || field_.empty() ? 4 : 0))) {
    return fail(ParseError{431, "header-fields-too-large", "Request header fields too large",
                           fmt::format("header fields exceed {} bytes", limits_.max_header_bytes)});
  }
  if (in_value_) {
    current_.headers.add(std::move(field_), std::move(value_));
    field_.clear();
    value_.clear();
    in_value_ = false;
  }
  field_.append(at, len);
  return 0;
}

int RequestParser::handle_header_value(const char* at, size_t len) {
  if (!count_header_bytes(len)) {
    return fail(ParseError{431, "header-fields-too-large", "Request header fields too large",
                           fmt::format("header fields exceed {} bytes", limits_.max_header_bytes)});
  }
  in_value_ = true;
  value_.append(at, len);
  return 0;
}

int RequestParser::handle_headers_complete() {
  if (in_value_ || !field_.empty()) {
    current_.headers.add(std::move(field_), std::move(value_));
    field_.clear();
    value_.clear();
    in_value_ = false;
  }
  current_.version_major = llhttp_get_http_major(&parser_);
  current_.version_minor = llhttp_get_http_minor(&parser_);
  if (current_.version_major != 1) {
    return fail(ParseError{505, "http-version-not-supported", "HTTP version not supported",
                           "only HTTP/1.0 and HTTP/1.1 are served"});
  }
  current_.method = llhttp_method_name(static_cast<llhttp_method_t>(llhttp_get_method(&parser_)));
  current_.keep_alive = llhttp_should_keep_alive(&parser_) != 0;
  auto target = split_target(current_.target);
  if (!target) {
    return fail(ParseError{400, "bad-request", "Bad request", "invalid request target"});
  }
  current_.raw_path = std::move(target->raw_path);
  current_.path = std::move(target->path);
  current_.raw_query = std::move(target->raw_query);
  if ((parser_.flags & F_CONTENT_LENGTH) && parser_.content_length > limits_.max_body_bytes) {
    return fail(ParseError{413, "content-too-large", "Content too large",
                           fmt::format("the body exceeds {} bytes", limits_.max_body_bytes)});
  }
  if (auto expect = current_.headers.get("Expect"); expect && iequals(*expect, "100-continue")) {
    expect_continue_ = true;
  }
  if (auto conn = current_.headers.get("Connection"); conn && header_has_token(*conn, "close")) {
    current_.keep_alive = false;
  }
  phase_ = ParsePhase::kBody;
  return 0;
}

int RequestParser::handle_body(const char* at, size_t len) {
  if (current_.body.size() + len > limits_.max_body_bytes) {
    return fail(ParseError{413, "content-too-large", "Content too large",
                           fmt::format("the body exceeds {} bytes", limits_.max_body_bytes)});
  }
  current_.body.append(at, len);
  return 0;
}

int RequestParser::handle_message_complete() {
  phase_ = ParsePhase::kIdle;
  expect_continue_ = false;
  if (parser_.upgrade) {
    // hawker speaks no protocol upgrade; the request is answered and the connection closed.
    current_.keep_alive = false;
  }
  completed_ = std::move(current_);
  current_ = Request{};
  return HPE_PAUSED;
}

}  // namespace hawker::http
