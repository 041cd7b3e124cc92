#pragma once

#include <functional>
#include <string>

#include "http/exchange.h"
#include "http/request.h"

namespace hawker::commerce {

/// Who is calling an admin endpoint.
struct Principal {
  std::string subject;        ///< the admin account's login, or the API token's id
  std::string role;           ///< "admin" (the only role so far; more may come)
  bool via_cookie = false;    ///< a dashboard session (CSRF applies) rather than a Bearer token
};

/// Guards admin endpoints: a Bearer API token or a dashboard session cookie (with CSRF checked
/// on writes). Anonymous callers get 401, the wrong role 403, both as problem+json.
class AdminAuth {
 public:
  virtual ~AdminAuth() = default;
  /// Authenticates the request; on success calls `next` on the loop thread, otherwise answers
  /// the exchange itself. `role` is the role the endpoint requires.
  virtual void require(const http::Request& request, const http::ExchangePtr& exchange,
                       std::function<void(const Principal&)> next,
                       std::string_view role = "admin") = 0;
};

}  // namespace hawker::commerce
