#include "commerce/password.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <charconv>

#include "core/secret.h"

namespace hawker::commerce {
namespace {

constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;
// Bounds on stored parameters, so a tampered row cannot make verification take minutes.
constexpr int kMaxLog2N = 20;
constexpr int kMaxR = 16;
constexpr int kMaxP = 4;

Result<std::string> scrypt(std::string_view password, std::string_view salt,
                           const ScryptParams& params) {
  uint64_t n = uint64_t{1} << params.log2_n;
  uint64_t max_mem =
      128 * n * static_cast<uint64_t>(params.r) * static_cast<uint64_t>(params.p) + (16u << 20);
  std::string out(kHashBytes, '\0');
  int ok = EVP_PBE_scrypt(password.data(), password.size(),
                          reinterpret_cast<const unsigned char*>(salt.data()), salt.size(), n,
                          static_cast<uint64_t>(params.r), static_cast<uint64_t>(params.p), max_mem,
                          reinterpret_cast<unsigned char*>(out.data()), out.size());
  if (ok != 1) return unexpected(ErrorCode::kInternal, "scrypt failed");
  return out;
}

bool parse_int(std::string_view text, int& out) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size();
}

/// Splits "ln=15,r=8,p=1".
bool parse_params(std::string_view text, ScryptParams& params) {
  int seen = 0;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view name = item.substr(0, eq);
    int value = 0;
    if (!parse_int(item.substr(eq + 1), value)) return false;
    if (name == "ln") {
      params.log2_n = value;
    } else if (name == "r") {
      params.r = value;
    } else if (name == "p") {
      params.p = value;
    } else {
      return false;
    }
    ++seen;
  }
  return seen == 3 && params.log2_n >= 1 && params.log2_n <= kMaxLog2N && params.r >= 1 &&
         params.r <= kMaxR && params.p >= 1 && params.p <= kMaxP;
}

}  // namespace

Result<std::string> hash_password(std::string_view password, ScryptParams params) {
  auto salt = random_bytes(kSaltBytes);
  if (!salt) return unexpected(std::move(salt).error());
  auto hash = scrypt(password, *salt, params);
  if (!hash) return unexpected(std::move(hash).error());
  return fmt::format("scrypt$ln={},r={},p={}${}${}", params.log2_n, params.r, params.p,
                     base64_encode(*salt), base64_encode(*hash));
}

bool verify_password(std::string_view password, std::string_view encoded) {
  // scrypt $ params $ salt $ hash
  std::string_view parts[4];
  std::string_view rest = encoded;
  for (int i = 0; i < 4; ++i) {
    size_t dollar = rest.find('$');
    if ((dollar == std::string_view::npos) != (i == 3)) return false;
    parts[i] = rest.substr(0, dollar);
    rest = i == 3 ? std::string_view() : rest.substr(dollar + 1);
  }
  if (parts[0] != "scrypt") return false;
  ScryptParams params;
  if (!parse_params(parts[1], params)) return false;
  auto salt = base64_decode(parts[2]);
  auto expected = base64_decode(parts[3]);
  if (!salt || !expected || salt->empty() || expected->size() != kHashBytes) return false;
  auto actual = scrypt(password, *salt, params);
  return actual && constant_time_equal(*actual, *expected);
}

}  // namespace hawker::commerce
