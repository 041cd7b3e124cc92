#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace hawker::media::rtmp::amf0 {

/// AMF0 type markers (Adobe AMF0 specification, section 2.1).
enum class Type : uint8_t {
  kNumber = 0x00,
  kBoolean = 0x01,
  kString = 0x02,
  kObject = 0x03,
  kNull = 0x05,
  kUndefined = 0x06,
  kEcmaArray = 0x08,
  kObjectEnd = 0x09,
  kStrictArray = 0x0a,
  kDate = 0x0b,
  kLongString = 0x0c,
};

struct Property;
/// Object and ECMA array properties keep their wire order.
using Properties = std::vector<Property>;

/// One AMF0 value. Only the members that belong to `type` are meaningful.
struct Value {
  Type type = Type::kNull;
  double number = 0;            ///< kNumber; kDate (milliseconds since the epoch)
  bool boolean = false;         ///< kBoolean
  int16_t timezone = 0;         ///< kDate (reserved, sent as 0)
  std::string string;           ///< kString, kLongString
  Properties properties;        ///< kObject, kEcmaArray
  std::vector<Value> elements;  ///< kStrictArray

  static Value make_number(double v);
  static Value make_boolean(bool v);
  /// A string; encoded as a long string when it does not fit 16 bits.
  static Value make_string(std::string v);
  static Value make_null();
  static Value make_undefined();
  static Value make_object(Properties props);
  static Value make_ecma_array(Properties props);
  static Value make_strict_array(std::vector<Value> elements);
  static Value make_date(double ms, int16_t timezone = 0);

  bool is_number() const { return type == Type::kNumber; }
  bool is_string() const { return type == Type::kString || type == Type::kLongString; }
  bool is_object_like() const { return type == Type::kObject || type == Type::kEcmaArray; }

  /// The property called `key` of an object or ECMA array; nullptr when absent.
  const Value* find(std::string_view key) const;
  /// The string at `key`, or `fallback` when it is absent or not a string.
  std::string string_at(std::string_view key, std::string_view fallback = {}) const;
  /// The number at `key`, or `fallback` when it is absent or not a number.
  double number_at(std::string_view key, double fallback = 0) const;

  bool operator==(const Value& other) const;
};

/// One named member of an object or ECMA array.
struct Property {
  std::string key;
  Value value;
  bool operator==(const Property& other) const = default;
};

/// Bounds that keep a hostile peer from exhausting stack or memory.
struct DecodeLimits {
  int max_depth = 16;
  /// Total values (including nested ones) in one decode_all call.
  size_t max_values = 16384;
};

/// Decodes values one after another from a byte buffer.
class Decoder {
 public:
  explicit Decoder(std::span<const uint8_t> bytes, DecodeLimits limits = {})
      : bytes_(bytes), limits_(limits) {}

  bool done() const { return pos_ >= bytes_.size(); }
  size_t offset() const { return pos_; }
  /// The next top-level value; an error on truncation, an unknown marker or a limit.
  Result<Value> next();

 private:
  Result<Value> value(int depth);
  Status properties(Properties& out, int depth, bool ecma);
  Result<std::string> utf8(size_t length_bytes);
  bool need(size_t n) const { return bytes_.size() - pos_ >= n; }

  std::span<const uint8_t> bytes_;
  DecodeLimits limits_;
  size_t pos_ = 0;
  size_t values_ = 0;
};

/// Every value in `bytes` (an RTMP command or data message body).
Result<std::vector<Value>> decode_all(std::span<const uint8_t> bytes, DecodeLimits limits = {});

/// Appends the encoding of `value` to `out`.
void encode(const Value& value, std::vector<uint8_t>& out);
/// The encoding of `values`, one after another.
std::vector<uint8_t> encode_all(std::span<const Value> values);

}  // namespace hawker::media::rtmp::amf0
