#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace hawker {

/// Broad error classes. Callers branch on these; the message is for people.
enum class ErrorCode : uint8_t {
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kConflict,
  kPermissionDenied,
  kUnauthenticated,
  kResourceExhausted,
  kUnavailable,
  kIo,
  kProtocol,
  kUnsupported,
  kInternal,
};

const char* to_string(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  /// Prefixes the message with what the caller was doing, as errors travel up:
  /// "open database: unable to open file".
  Error with_context(std::string_view what) const& {
    return Error{code, fmt::format("{}: {}", what, message)};
  }
  Error with_context(std::string_view what) && {
    message = fmt::format("{}: {}", what, message);
    return std::move(*this);
  }
};

/// Wraps an Error so that `return unexpected(...)` reads like std::expected.
struct Unexpected {
  Error error;
};
inline Unexpected unexpected(Error e) { return Unexpected{std::move(e)}; }
inline Unexpected unexpected(ErrorCode code, std::string message) {
  return Unexpected{Error{code, std::move(message)}};
}

/// A value or an Error, shaped like std::expected<T, Error> so moving to it later is an alias.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  Result(Unexpected u) : v_(std::in_place_index<1>, std::move(u.error)) {}
  Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

  template <typename U>
  T value_or(U&& fallback) const& {
    return has_value() ? value() : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, Error> v_;
};

/// Success or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Unexpected u) : error_(std::move(u.error)), ok_(false) {}
  Status(Error e) : error_(std::move(e)), ok_(false) {}

  bool has_value() const { return ok_; }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_;
  bool ok_ = true;
};

inline Status ok_status() { return Status{}; }

}  // namespace hawker

/// Returns early from the enclosing function when `expr` (a Result or Status) failed,
/// adding `context` to the error.
#define HAWKER_TRY_STATUS(expr, context)                                                 \
  do {                                                                                   \
    auto&& hawker_try_ = (expr);                                                         \
    if (!hawker_try_) {                                                                  \
      return ::hawker::unexpected(std::move(hawker_try_).error().with_context(context)); \
    }                                                                                    \
  } while (0)
