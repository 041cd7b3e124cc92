#include "commerce/payments.h"

#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>

namespace hawker::commerce {
namespace {

std::string url_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

}  // namespace

std::string TestPaymentProvider::payment_url(const Order& order) const {
  return fmt::format("{}/api/orders/{}/pay", public_url_, order.token);
}

std::string secret_key_bytes(const Secret& secret) {
  const std::string& s = secret.reveal();
  if (s.starts_with("whsec_")) {
    if (auto raw = base64_decode(std::string_view(s).substr(6))) return *raw;
  }
  return s;
}

std::string signed_order_reference(const Secret& secret, const Order& order) {
  std::string ref = fmt::format("{}.{}.{}", order.id, order.amount_minor, order.currency);
  return ref + "." + base64url_encode(hmac_sha256(secret_key_bytes(secret), ref));
}

std::string HostedPaymentProvider::payment_url(const Order& order) const {
  char sep = checkout_url_.find('?') == std::string::npos ? '?' : '&';
  return fmt::format("{}{}reference={}&amount_minor={}&currency={}&return_url={}", checkout_url_,
                     sep, url_encode(signed_order_reference(secret_, order)), order.amount_minor,
                     order.currency,
                     url_encode(fmt::format("{}/api/orders/{}", public_url_, order.token)));
}

std::string hosted_signature(const Secret& secret, std::string_view id, std::string_view timestamp,
                             std::string_view body) {
  std::string signed_content = fmt::format("{}.{}.{}", id, timestamp, body);
  return base64_encode(hmac_sha256(secret_key_bytes(secret), signed_content));
}

Status verify_hosted_webhook(const Secret& secret, std::string_view id, std::string_view timestamp,
                             std::string_view signature_header, std::string_view body,
                             int64_t now_ms, int64_t tolerance_s) {
  if (id.empty() || timestamp.empty() || signature_header.empty()) {
    return unexpected(ErrorCode::kUnauthenticated,
                      "webhook-id, webhook-timestamp and webhook-signature are required");
  }
  int64_t ts = 0;
  auto [p, ec] = std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), ts);
  if (ec != std::errc() || p != timestamp.data() + timestamp.size()) {
    return unexpected(ErrorCode::kUnauthenticated, "webhook-timestamp is not Unix seconds");
  }
  int64_t now_s = now_ms / 1000;
  if (ts < now_s - tolerance_s || ts > now_s + tolerance_s) {
    return unexpected(ErrorCode::kUnauthenticated, "webhook-timestamp outside the tolerance");
  }
  std::string expected = hosted_signature(secret, id, timestamp, body);
  bool match = false;
  std::string_view rest = signature_header;
  while (!rest.empty()) {
    size_t space = rest.find(' ');
    std::string_view entry = rest.substr(0, space);
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    if (entry.starts_with("v1,")) {
      // Every entry is compared, matched or not, so timing tells nothing about which one hit.
      match = constant_time_equal(entry.substr(3), expected) || match;
    }
  }
  if (!match) return unexpected(ErrorCode::kUnauthenticated, "no matching v1 signature");
  return ok_status();
}

Result<HostedPayment> parse_hosted_payment(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return unexpected(ErrorCode::kInvalidArgument, "body is not a JSON object");
  }
  HostedPayment p;
  auto str = [&](const char* name, std::string& out) -> bool {
    if (!j.contains(name) || !j[name].is_string() || j[name].get<std::string>().empty()) {
      return false;
    }
    out = j[name].get<std::string>();
    return true;
  };
  if (!str("type", p.type)) return unexpected(ErrorCode::kInvalidArgument, "type: required");
  if (!str("order_id", p.order_id)) {
    return unexpected(ErrorCode::kInvalidArgument, "order_id: required");
  }
  if (!str("payment_id", p.payment_id)) {
    return unexpected(ErrorCode::kInvalidArgument, "payment_id: required");
  }
  if (!str("currency", p.currency)) {
    return unexpected(ErrorCode::kInvalidArgument, "currency: required");
  }
  if (!j.contains("amount_minor") || !j["amount_minor"].is_number_integer()) {
    return unexpected(ErrorCode::kInvalidArgument, "amount_minor: required whole number");
  }
  p.amount_minor = j["amount_minor"].get<int64_t>();
  return p;
}

}  // namespace hawker::commerce
