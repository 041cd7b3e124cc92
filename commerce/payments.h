#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "commerce/orders.h"
#include "core/result.h"
#include "core/secret.h"

namespace hawker::commerce {

/// How buyers pay. The provider decides where the buyer goes to pay; the confirmation comes
/// back through the shop API (the test provider's pay endpoint, the hosted provider's webhook).
class PaymentProvider {
 public:
  virtual ~PaymentProvider() = default;
  virtual std::string_view name() const = 0;
  /// Where the buyer is sent to pay this order.
  virtual std::string payment_url(const Order& order) const = 0;
  /// Whether the buyer may confirm payment on hawker itself (virtual money).
  virtual bool accepts_buyer_confirmation() const = 0;
};

/// Virtual money: the buyer presses pay on hawker's own page, which POSTs
/// /api/orders/{token}/pay. For shows that rehearse, and for demos.
class TestPaymentProvider final : public PaymentProvider {
 public:
  explicit TestPaymentProvider(std::string public_url) : public_url_(std::move(public_url)) {}
  std::string_view name() const override { return "test"; }
  std::string payment_url(const Order& order) const override;
  bool accepts_buyer_confirmation() const override { return true; }

 private:
  std::string public_url_;
};

/// A hosted checkout: the buyer goes to the configured URL with a signed order reference; the
/// provider confirms with a signed webhook (verify_hosted_webhook).
class HostedPaymentProvider final : public PaymentProvider {
 public:
  HostedPaymentProvider(std::string checkout_url, Secret secret, std::string public_url)
      : checkout_url_(std::move(checkout_url)),
        secret_(std::move(secret)),
        public_url_(std::move(public_url)) {}
  std::string_view name() const override { return "hosted"; }
  std::string payment_url(const Order& order) const override;
  bool accepts_buyer_confirmation() const override { return false; }
  const Secret& secret() const { return secret_; }

 private:
  std::string checkout_url_;
  Secret secret_;
  std::string public_url_;
};

/// "<order id>.<amount>.<currency>.<base64url HMAC-SHA256 of that under the secret>": lets the
/// checkout trust what it is asked to charge.
std::string signed_order_reference(const Secret& secret, const Order& order);

/// The key bytes of a configured secret: "whsec_<base64>" decodes, anything else is used as is.
std::string secret_key_bytes(const Secret& secret);

/// Standard Webhooks signature of a hosted-provider callback:
/// base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}".
std::string hosted_signature(const Secret& secret, std::string_view id, std::string_view timestamp,
                             std::string_view body);

/// Checks a callback's headers: the timestamp within `tolerance_s` of now and one of the
/// space-separated "v1,<sig>" entries matching (constant time). kUnauthenticated otherwise.
Status verify_hosted_webhook(const Secret& secret, std::string_view id, std::string_view timestamp,
                             std::string_view signature_header, std::string_view body,
                             int64_t now_ms, int64_t tolerance_s = 300);

/// The body a hosted provider posts: {"type": "payment.succeeded", "order_id", "payment_id",
/// "amount_minor", "currency"}.
struct HostedPayment {
  std::string type;
  std::string order_id;
  std::string payment_id;
  int64_t amount_minor = 0;
  std::string currency;
};
Result<HostedPayment> parse_hosted_payment(std::string_view body);

}  // namespace hawker::commerce
