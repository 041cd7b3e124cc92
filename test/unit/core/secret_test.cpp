#include "core/secret.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <thread>

using namespace hawker;

TEST_CASE("random tokens are URL-safe, prefixed and distinct") {
  auto a = random_token("hk_", 24);
  auto b = random_token("hk_", 24);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->reveal().rfind("hk_", 0) == 0);
  CHECK(a->reveal().size() == 3 + 32);
  CHECK(a->reveal() != b->reveal());
  CHECK(a->reveal().find_first_not_of(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
        std::string::npos);
}

TEST_CASE("random bytes drawn from the per-thread pool never repeat, across refills and forks") {
  std::set<std::string> seen;
  // 16 bytes at a time, well past several refills of the pool, plus sizes that straddle one.
  for (int i = 0; i < 2000; ++i) {
    auto b = random_bytes(i % 7 == 0 ? 300 : 16 + i % 3);
    REQUIRE(b);
    CHECK(b->size() == (i % 7 == 0 ? 300u : 16u + i % 3));
    CHECK(seen.insert(*b).second);
  }
  // A forked child must not hand out the bytes its parent is about to.
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto b = random_bytes(16);
    ssize_t n = b ? write(fds[1], b->data(), b->size()) : -1;
    _exit(n == 16 ? 0 : 1);
  }
  close(fds[1]);
  char buf[16];
  ssize_t n = read(fds[0], buf, sizeof buf);
  close(fds[0]);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(n == 16);
  auto parent = random_bytes(16);
  REQUIRE(parent);
  CHECK(*parent != std::string(buf, 16));
}

TEST_CASE("time-ordered tokens sort by time and keep their random part") {
  auto early = time_ordered_token("otk_", 1'700'000'000'000, 24);
  auto same_ms = time_ordered_token("otk_", 1'700'000'000'000, 24);
  auto later = time_ordered_token("otk_", 1'700'000'000'001, 24);
  REQUIRE(early);
  REQUIRE(same_ms);
  REQUIRE(later);
  CHECK(early->reveal().rfind("otk_018bcfe56800", 0) == 0);
  CHECK(early->reveal().size() == 4 + 12 + 32);
  CHECK(early->reveal() != same_ms->reveal());
  CHECK(early->reveal() < later->reveal());
  CHECK(same_ms->reveal() < later->reveal());
  auto event_id = time_ordered_token("evt_", 1'700'000'000'000, 16);
  REQUIRE(event_id);
  CHECK(event_id->reveal().size() == 4 + 12 + 22);
  auto random_part = base64_decode(event_id->reveal().substr(16));
  REQUIRE(random_part);
  CHECK(random_part->size() == 16);
  CHECK_FALSE(time_ordered_token("x_", 1, 257));
  // Ten digits of milliseconds, then eleven: the fixed width keeps the order.
  CHECK(time_ordered_token("e_", 9'999'999'999, 4)->reveal() <
        time_ordered_token("e_", 10'000'000'000, 4)->reveal());
}

TEST_CASE("secrets never format as their value") {
  Secret s("sk_live_supersecret");
  CHECK(fmt::format("key={}", s) == "key=[redacted]");
}

TEST_CASE("sha256 and hmac match known vectors") {
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // FIPS 180-2: the empty message and a two-block one; the per-thread context is reused
  // between calls, so each is hashed twice and on a second thread too.
  for (int round = 0; round < 2; ++round) {
    CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  }
  std::string other;
  std::thread([&other] { other = sha256_hex("abc"); }).join();
  CHECK(other == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // RFC 4231 test case 2.
  CHECK(hex_encode(hmac_sha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("base64 round trips, both alphabets") {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00\x01"}) {
    auto back = base64_decode(base64_encode(s));
    REQUIRE(back);
    CHECK(*back == s);
    auto back_url = base64_decode(base64url_encode(s));
    REQUIRE(back_url);
    CHECK(*back_url == s);
  }
  // RFC 4648 section 10, and the URL-safe alphabet without padding.
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foob") == "Zm9vYg==");
  CHECK(base64_encode("fooba") == "Zm9vYmE=");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  CHECK(base64url_encode("f") == "Zg");
  CHECK(base64url_encode("fo") == "Zm8");
  CHECK(base64_encode("\xfb\xff\xbf") == "+/+/");
  CHECK(base64url_encode("\xfb\xff\xbf") == "-_-_");
  CHECK_FALSE(base64_decode("a*b"));
}

TEST_CASE("constant-time comparison") {
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "abcd"));
}
