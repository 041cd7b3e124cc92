#include "media/rtmp/amf0.h"

#include <doctest/doctest.h>

#include <cstring>
#include <limits>

using namespace hawker;
using namespace hawker::media::rtmp;
using amf0::Type;
using amf0::Value;

namespace {

Value sample_object() {
  return Value::make_object({
      {"app", Value::make_string("live")},
      {"tcUrl", Value::make_string("rtmp://127.0.0.1/live")},
      {"fpad", Value::make_boolean(false)},
      {"audioCodecs", Value::make_number(3575)},
      {"nested",
       Value::make_ecma_array(
           {{"a", Value::make_null()},
            {"b", Value::make_undefined()},
            {"c", Value::make_strict_array({Value::make_number(1), Value::make_string("x")})}})},
      {"when", Value::make_date(1.7e12, 0)},
  });
}

}  // namespace

TEST_CASE("amf0 values round trip through encode and decode") {
  std::vector<Value> values{
      Value::make_string("connect"),
      Value::make_number(1),
      sample_object(),
      Value::make_number(-0.5),
      Value::make_number(std::numeric_limits<double>::infinity()),
      Value::make_string(""),
      Value::make_string(std::string(70000, 'k')),
      Value::make_null(),
      Value::make_undefined(),
      Value::make_boolean(true),
      Value::make_strict_array({}),
  };
  auto bytes = amf0::encode_all(values);
  auto decoded = amf0::decode_all(bytes);
  REQUIRE(decoded);
  REQUIRE(decoded->size() == values.size());
  CHECK(*decoded == values);
  CHECK((*decoded)[6].type == Type::kLongString);
  CHECK((*decoded)[2].string_at("app") == "live");
  CHECK((*decoded)[2].number_at("audioCodecs") == 3575);
  CHECK((*decoded)[2].find("missing") == nullptr);
  CHECK(amf0::encode_all(*decoded) == bytes);
}

TEST_CASE("amf0 encodes the wire format the specification gives") {
  std::vector<Value> values{Value::make_string("ab"), Value::make_number(1.0),
                            Value::make_object({{"k", Value::make_boolean(true)}})};
  auto bytes = amf0::encode_all(values);
  std::vector<uint8_t> expected{0x02, 0x00, 0x02, 'a',  'b',  0x00, 0x3f, 0xf0, 0, 0, 0,   0,
                                0,    0,    0x03, 0x00, 0x01, 'k',  0x01, 1,    0, 0, 0x09};
  CHECK(bytes == expected);
}

TEST_CASE("amf0 ECMA arrays without their end marker still decode") {
  std::vector<uint8_t> bytes{0x08, 0, 0, 0, 1, 0x00, 0x01, 'w', 0x00, 0x40, 0x59, 0, 0, 0, 0, 0, 0};
  auto decoded = amf0::decode_all(bytes);
  REQUIRE(decoded);
  CHECK((*decoded)[0].number_at("w") == 100);
}

TEST_CASE("amf0 rejects garbage with an error, never a crash") {
  auto fails = [](std::vector<uint8_t> bytes) {
    auto r = amf0::decode_all(bytes);
    return !r && r.error().code == ErrorCode::kProtocol;
  };
  CHECK(fails({0x00, 0x3f}));                          // truncated number
  CHECK(fails({0x02, 0x00, 0x10, 'a'}));               // string longer than the buffer
  CHECK(fails({0x0c, 0xff, 0xff, 0xff, 0xff}));        // long string longer than the buffer
  CHECK(fails({0x0d}));                                // unsupported marker
  CHECK(fails({0x11}));                                // AMF3 switch is not AMF0
  CHECK(fails({0x09}));                                // object end outside an object
  CHECK(fails({0x03, 0x00, 0x01, 'k'}));               // object cut after a key
  CHECK(fails({0x0a, 0xff, 0xff, 0xff, 0xff, 0x05}));  // strict array count beyond the bytes
  CHECK(fails({0x0b, 0, 0, 0}));                       // truncated date

  // Deep nesting hits the depth limit instead of the stack.
  std::vector<uint8_t> deep;
  for (int i = 0; i < 100; ++i) {
    deep.insert(deep.end(), {0x03, 0x00, 0x01, 'x'});
  }
  deep.push_back(0x05);
  auto r = amf0::decode_all(deep);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("deep") != std::string::npos);

  // Many values hit the count limit.
  std::vector<uint8_t> many(1000, 0x05);
  CHECK_FALSE(amf0::decode_all(many, amf0::DecodeLimits{16, 100}));
  CHECK(amf0::decode_all(many));
}

TEST_CASE("amf0 decoder reads values one at a time") {
  std::vector<Value> values{Value::make_string("onStatus"), Value::make_number(0)};
  auto bytes = amf0::encode_all(values);
  amf0::Decoder decoder(bytes);
  auto first = decoder.next();
  REQUIRE(first);
  CHECK(first->string == "onStatus");
  CHECK(decoder.offset() == 11);
  auto second = decoder.next();
  REQUIRE(second);
  CHECK(decoder.done());
  CHECK_FALSE(decoder.next());
}
