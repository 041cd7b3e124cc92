#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "commerce/auth.h"
#include "core/clock.h"
#include "core/result.h"
#include "core/secret.h"
#include "http/router.h"
#include "storage/migrations.h"
#include "storage/store.h"

namespace hawker::commerce {

/// Roles an API token or session may carry. "admin" may do everything; "support" may read
/// orders and products but change nothing.
inline constexpr std::string_view kRoleAdmin = "admin";
inline constexpr std::string_view kRoleSupport = "support";
inline constexpr std::string_view kSessionCookie = "hawker_session";
inline constexpr std::string_view kApiTokenPrefix = "hwt_";

/// Admin accounts, API tokens and dashboard sessions (migration 120).
std::span<const storage::Migration> seller_auth_migrations();

/// Creates the account or replaces its password. `password_hash` comes from hash_password.
Status set_admin_password(storage::Database& db, std::string_view login,
                          std::string_view password_hash, int64_t now_ms);

/// The stored scrypt hash of `login`, or nullopt when there is no such account.
Result<std::optional<std::string>> admin_password_hash(storage::Database& db,
                                                       std::string_view login);

struct IssuedApiToken {
  std::string id;  ///< "tokid_..." shown in listings
  Secret token;    ///< "hwt_...", shown once
  std::string role;
};

/// Issues an API token for `role`; only its SHA-256 is stored.
Result<IssuedApiToken> issue_api_token(storage::Database& db, std::string_view role,
                                       int64_t now_ms);

struct IssuedSession {
  Secret token;            ///< the cookie value
  std::string csrf_token;  ///< what the dashboard sends back in X-CSRF-Token on writes
  int64_t expires_at_ms = 0;
};

/// Opens a dashboard session for `login` (hash stored, expired ones swept).
Result<IssuedSession> create_session(storage::Database& db, std::string_view login, int64_t now_ms,
                                     int64_t ttl_ms);
Status delete_session(storage::Database& db, std::string_view token);

/// The caller behind a Bearer token or a session cookie, or nullopt when unknown or expired.
Result<std::optional<Principal>> principal_for_api_token(storage::Database& db,
                                                         std::string_view token);
Result<std::optional<Principal>> principal_for_session(storage::Database& db,
                                                       std::string_view token, int64_t now_ms);

/// The value of cookie `name` in a Cookie header ("a=1; hawker_session=x").
std::optional<std::string> cookie_value(std::string_view cookie_header, std::string_view name);
/// The CSRF token tied to a session: derived from it, so it needs no storage and changes with it.
std::string csrf_token_for(std::string_view session_token);
/// Whether a cookie-authenticated request may proceed: safe methods always; writes only with
/// the session's CSRF token in `csrf_header`.
bool csrf_allows(std::string_view method, std::string_view session_token,
                 std::optional<std::string_view> csrf_header);
/// The Set-Cookie value for a session (HttpOnly, SameSite=Strict, Path=/, Secure when asked).
std::string session_cookie(std::string_view token, int64_t max_age_s, bool secure);
/// Whether a principal with `have` may call an endpoint that requires `need`.
bool role_allows(std::string_view have, std::string_view need);

/// Refuses an address after too many failed logins in a window, until the window has passed
/// since its first failure. Loop thread only.
class LoginThrottle {
 public:
  struct Options {
    int max_failures = 5;
    int64_t window_ms = 15 * 60 * 1000;
    size_t max_tracked = 10'000;
  };
  LoginThrottle() : LoginThrottle(Options{}) {}
  explicit LoginThrottle(Options options) : options_(options) {}

  /// Milliseconds until `address` may try again (0: now).
  int64_t retry_after_ms(const std::string& address, int64_t now_ms) const;
  void record_failure(const std::string& address, int64_t now_ms);
  void record_success(const std::string& address) { entries_.erase(address); }

 private:
  struct Entry {
    int failures = 0;
    int64_t first_failure_ms = 0;
  };
  Options options_;
  std::unordered_map<std::string, Entry> entries_;
};

struct SellerAuthOptions {
  int64_t session_ttl_ms = 12 * 3600 * 1000;
  /// Adds Secure to the session cookie (http.secure-cookies, or an https public URL).
  bool secure_cookies = false;
};

/// AdminAuth over API tokens and dashboard sessions in SQLite, with the login and logout
/// endpoints. Lookups and password checks run on the storage threads, never on the loop.
class SellerAuth final : public AdminAuth {
 public:
  SellerAuth(storage::Store& store, const Clock& clock, SellerAuthOptions options);

  void require(const http::Request& request, const http::ExchangePtr& exchange,
               std::function<void(const Principal&)> next,
               std::string_view role = kRoleAdmin) override;

  /// POST /api/admin/login, POST /api/admin/logout, GET /api/admin/me.
  Status add_routes(http::Router& router);

 private:
  void login(const http::Request& request, const http::ExchangePtr& exchange);
  void logout(const http::Request& request, const http::ExchangePtr& exchange);

  storage::Store& store_;
  const Clock& clock_;
  SellerAuthOptions options_;
  LoginThrottle throttle_;
};

/// The host part of "host:port" or "[v6]:port", for per-address limits.
std::string host_of(std::string_view remote);

}  // namespace hawker::commerce
