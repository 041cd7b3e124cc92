#include "core/secret.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>

#include "core/deleters.h"

namespace hawker {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

/// Bumped in a forked child, so that it never hands out bytes its parent also holds.
std::atomic<uint64_t> fork_generation{0};

/// Random bytes from OpenSSL's CSPRNG, fetched a few KiB at a time: an order needs four small
/// tokens, and each RAND_bytes call costs far more than the bytes it makes. Bytes are handed
/// out once and wiped as they go; the pool is per thread.
class RandomPool {
 public:
  static constexpr size_t kSize = 4096;
  /// Requests larger than this go straight to RAND_bytes.
  static constexpr size_t kLargest = 256;

  bool fill(unsigned char* out, size_t n) {
    uint64_t generation = fork_generation.load(std::memory_order_relaxed);
    if (generation != generation_) {
      used_ = kSize;
      generation_ = generation;
    }
    if (kSize - used_ < n) {
      if (RAND_bytes(bytes_, static_cast<int>(kSize)) != 1) return false;
      used_ = 0;
    }
    std::memcpy(out, bytes_ + used_, n);
    OPENSSL_cleanse(bytes_ + used_, n);
    used_ += n;
    return true;
  }

  ~RandomPool() { OPENSSL_cleanse(bytes_, sizeof bytes_); }

 private:
  unsigned char bytes_[kSize];
  size_t used_ = kSize;
  uint64_t generation_ = 0;
};

/// `n` random bytes into `out`: small requests from this thread's pool, large ones straight
/// from RAND_bytes.
bool fill_random(unsigned char* out, size_t n) {
  static std::once_flag at_fork;
  std::call_once(at_fork,
                 [] { pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1); }); });
  thread_local RandomPool pool;
  return n > RandomPool::kLargest ? RAND_bytes(out, static_cast<int>(n)) == 1 : pool.fill(out, n);
}

/// Appends base64 of `data` to `out`: the standard alphabet with padding, or (url) the
/// URL-safe one without.
void append_base64(std::string& out, std::string_view data, bool url) {
  const char* alphabet = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                             : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(data[k])); };
  // The whole groups of three are written in place, not appended a character at a time.
  size_t groups = data.size() / 3;
  size_t at = out.size();
  out.reserve(at + (data.size() + 2) / 3 * 4);
  out.resize(at + groups * 4);
  char* p = out.data() + at;
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    *p++ = alphabet[v >> 18 & 63];
    *p++ = alphabet[v >> 12 & 63];
    *p++ = alphabet[v >> 6 & 63];
    *p++ = alphabet[v & 63];
  }
  size_t left = data.size() - i;
  if (left == 0) return;
  uint32_t v = byte(i) << 16 | (left == 2 ? byte(i + 1) << 8 : 0);
  out += alphabet[v >> 18 & 63];
  out += alphabet[v >> 12 & 63];
  if (left == 2) out += alphabet[v >> 6 & 63];
  if (!url) out.append(left == 1 ? "==" : "=");
}

}  // namespace

Result<std::string> random_bytes(size_t bytes) {
  std::string out(bytes, '\0');
  if (!fill_random(reinterpret_cast<unsigned char*>(out.data()), bytes)) {
    return unexpected(ErrorCode::kInternal, "RAND_bytes failed");
  }
  return out;
}

Result<Secret> random_token(std::string_view prefix, size_t bytes) {
  auto raw = random_bytes(bytes);
  if (!raw) return unexpected(std::move(raw).error());
  return Secret(std::string(prefix) + base64url_encode(*raw));
}

Result<Secret> time_ordered_token(std::string_view prefix, int64_t now_ms, size_t bytes) {
  // Every order makes four of these: one allocation each, the random bytes on the stack.
  unsigned char raw[RandomPool::kLargest];
  if (bytes > sizeof raw) return unexpected(ErrorCode::kInvalidArgument, "token too long");
  if (!fill_random(raw, bytes)) return unexpected(ErrorCode::kInternal, "RAND_bytes failed");
  // 48 bits of milliseconds last until the year 10889; a clock before 1970 counts as 1970.
  uint64_t ms = static_cast<uint64_t>(std::max<int64_t>(now_ms, 0));
  std::string token;
  token.reserve(prefix.size() + 12 + (bytes + 2) / 3 * 4);
  token.append(prefix);
  token.resize(prefix.size() + 12);
  char* digit = token.data() + prefix.size();
  for (int shift = 44; shift >= 0; shift -= 4) *digit++ = kHexDigits[(ms >> shift) & 15];
  append_base64(token, std::string_view(reinterpret_cast<const char*>(raw), bytes), true);
  OPENSSL_cleanse(raw, bytes);
  return Secret(std::move(token));
}

std::string hex_encode(std::string_view data) {
  std::string out(data.size() * 2, '\0');
  char* p = out.data();
  for (unsigned char c : data) {
    *p++ = kHexDigits[c >> 4];
    *p++ = kHexDigits[c & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  // SHA256() fetches the algorithm from OpenSSL's provider tables on every call, which costs
  // several times what hashing a short text does: fetch it once per process and keep a context
  // per thread (every order hashes its request on the storage thread).
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local CPtr<EVP_MD_CTX, EVP_MD_CTX_free> ctx(EVP_MD_CTX_new());
  unsigned char digest[SHA256_DIGEST_LENGTH];
  unsigned int size = 0;
  if (kSha256 == nullptr || ctx == nullptr ||
      EVP_DigestInit_ex2(ctx.get(), kSha256, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &size) != 1 || size != sizeof digest) {
    // Not expected with a working libcrypto; the one-shot form reports the same digest.
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  }
  return hex_encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string base64_encode(std::string_view data) {
  std::string out;
  append_base64(out, data, false);
  return out;
}

std::string base64url_encode(std::string_view data) {
  std::string out;
  append_base64(out, data, true);
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    int v = value(c);
    if (v < 0) return unexpected(ErrorCode::kInvalidArgument, "invalid base64");
    acc = acc << 6 | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>(acc >> bits & 0xff);
    }
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace hawker
