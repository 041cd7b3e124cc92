#include "media/rtmp/amf0.h"

#include <fmt/format.h>

#include <bit>
#include <cstring>

namespace hawker::media::rtmp::amf0 {

namespace {

constexpr size_t kMaxShortString = 0xffff;

Error decode_error(std::string message) { return Error{ErrorCode::kProtocol, "amf0: " + message}; }

uint64_t read_be(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = v << 8 | p[i];
  return v;
}

void put_be(std::vector<uint8_t>& out, uint64_t v, size_t n) {
  for (size_t i = n; i-- > 0;) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void put_double(std::vector<uint8_t>& out, double d) { put_be(out, std::bit_cast<uint64_t>(d), 8); }

void put_key(std::vector<uint8_t>& out, std::string_view key) {
  size_t n = std::min(key.size(), kMaxShortString);
  put_be(out, n, 2);
  out.insert(out.end(), key.begin(), key.begin() + static_cast<std::ptrdiff_t>(n));
}

void put_properties(std::vector<uint8_t>& out, const Properties& props) {
  for (const auto& [key, value] : props) {
    put_key(out, key);
    encode(value, out);
  }
  put_be(out, 0, 2);
  out.push_back(static_cast<uint8_t>(Type::kObjectEnd));
}

}  // namespace

Value Value::make_number(double v) {
  Value out;
  out.type = Type::kNumber;
  out.number = v;
  return out;
}

Value Value::make_boolean(bool v) {
  Value out;
  out.type = Type::kBoolean;
  out.boolean = v;
  return out;
}

Value Value::make_string(std::string v) {
  Value out;
  out.type = v.size() > kMaxShortString ? Type::kLongString : Type::kString;
  out.string = std::move(v);
  return out;
}

Value Value::make_null() { return Value{}; }

Value Value::make_undefined() {
  Value out;
  out.type = Type::kUndefined;
  return out;
}

Value Value::make_object(Properties props) {
  Value out;
  out.type = Type::kObject;
  out.properties = std::move(props);
  return out;
}

Value Value::make_ecma_array(Properties props) {
  Value out;
  out.type = Type::kEcmaArray;
  out.properties = std::move(props);
  return out;
}

Value Value::make_strict_array(std::vector<Value> elements) {
  Value out;
  out.type = Type::kStrictArray;
  out.elements = std::move(elements);
  return out;
}

Value Value::make_date(double ms, int16_t timezone) {
  Value out;
  out.type = Type::kDate;
  out.number = ms;
  out.timezone = timezone;
  return out;
}

const Value* Value::find(std::string_view key) const {
  if (!is_object_like()) return nullptr;
  for (const auto& [k, v] : properties) {
    if (k == key) return &v;
  }
  return nullptr;
}

std::string Value::string_at(std::string_view key, std::string_view fallback) const {
  const Value* v = find(key);
  if (v == nullptr || !v->is_string()) return std::string(fallback);
  return v->string;
}

double Value::number_at(std::string_view key, double fallback) const {
  const Value* v = find(key);
  if (v == nullptr || !v->is_number()) return fallback;
  return v->number;
}

bool Value::operator==(const Value& other) const {
  if (type != other.type) return false;
  switch (type) {
    case Type::kNumber:
      return std::bit_cast<uint64_t>(number) == std::bit_cast<uint64_t>(other.number);
    case Type::kDate:
      return std::bit_cast<uint64_t>(number) == std::bit_cast<uint64_t>(other.number) &&
             timezone == other.timezone;
    case Type::kBoolean:
      return boolean == other.boolean;
    case Type::kString:
    case Type::kLongString:
      return string == other.string;
    case Type::kObject:
    case Type::kEcmaArray:
      return properties == other.properties;
    case Type::kStrictArray:
      return elements == other.elements;
    case Type::kNull:
    case Type::kUndefined:
    case Type::kObjectEnd:
      return true;
  }
  return false;
}

Result<std::string> Decoder::utf8(size_t length_bytes) {
  if (!need(length_bytes)) return decode_error("truncated string length");
  size_t n = read_be(bytes_.data() + pos_, length_bytes);
  pos_ += length_bytes;
  if (!need(n)) return decode_error(fmt::format("string of {} bytes runs past the end", n));
  std::string out(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
  pos_ += n;
  return out;
}

Status Decoder::properties(Properties& out, int depth, bool ecma) {
  while (true) {
    if (ecma && done()) {
      // Some encoders end an ECMA array at its count without the end marker.
      return ok_status();
    }
    auto key = utf8(2);
    if (!key) return std::move(key).error();
    if (key->empty()) {
      if (!need(1)) return decode_error("truncated object end");
      if (bytes_[pos_] == static_cast<uint8_t>(Type::kObjectEnd)) {
        ++pos_;
        return ok_status();
      }
    }
    auto v = value(depth + 1);
    if (!v) return std::move(v).error();
    out.push_back(Property{std::move(*key), std::move(*v)});
  }
}

Result<Value> Decoder::value(int depth) {
  if (depth > limits_.max_depth) return decode_error("nesting too deep");
  if (++values_ > limits_.max_values) return decode_error("too many values");
  if (!need(1)) return decode_error("truncated value");
  uint8_t marker = bytes_[pos_++];
  Value out;
  switch (static_cast<Type>(marker)) {
    case Type::kNumber:
      if (!need(8)) return decode_error("truncated number");
      out = Value::make_number(std::bit_cast<double>(read_be(bytes_.data() + pos_, 8)));
      pos_ += 8;
      return out;
    case Type::kBoolean:
      if (!need(1)) return decode_error("truncated boolean");
      return Value::make_boolean(bytes_[pos_++] != 0);
    case Type::kString:
    case Type::kLongString: {
      auto s = utf8(marker == static_cast<uint8_t>(Type::kString) ? 2 : 4);
      if (!s) return std::move(s).error();
      out.type = static_cast<Type>(marker);
      out.string = std::move(*s);
      return out;
    }
    case Type::kObject: {
      out.type = Type::kObject;
      Status st = properties(out.properties, depth, false);
      if (!st) return std::move(st).error();
      return out;
    }
    case Type::kEcmaArray: {
      if (!need(4)) return decode_error("truncated ECMA array count");
      pos_ += 4;  // The count is a hint; the end marker ends the array.
      out.type = Type::kEcmaArray;
      Status st = properties(out.properties, depth, true);
      if (!st) return std::move(st).error();
      return out;
    }
    case Type::kStrictArray: {
      if (!need(4)) return decode_error("truncated strict array count");
      size_t count = read_be(bytes_.data() + pos_, 4);
      pos_ += 4;
      // Every element takes at least one byte, so a count beyond the remaining bytes is a lie.
      if (count > bytes_.size() - pos_) return decode_error("strict array count past the end");
      out.type = Type::kStrictArray;
      out.elements.reserve(count);
      for (size_t i = 0; i < count; ++i) {
        auto v = value(depth + 1);
        if (!v) return std::move(v).error();
        out.elements.push_back(std::move(*v));
      }
      return out;
    }
    case Type::kDate:
      if (!need(10)) return decode_error("truncated date");
      out = Value::make_date(std::bit_cast<double>(read_be(bytes_.data() + pos_, 8)),
                             static_cast<int16_t>(read_be(bytes_.data() + pos_ + 8, 2)));
      pos_ += 10;
      return out;
    case Type::kNull:
      return Value::make_null();
    case Type::kUndefined:
      return Value::make_undefined();
    case Type::kObjectEnd:
      return decode_error("object end outside an object");
  }
  return decode_error(fmt::format("unsupported marker 0x{:02x}", marker));
}

Result<Value> Decoder::next() { return value(0); }

Result<std::vector<Value>> decode_all(std::span<const uint8_t> bytes, DecodeLimits limits) {
  Decoder decoder(bytes, limits);
  std::vector<Value> out;
  while (!decoder.done()) {
    auto v = decoder.next();
    if (!v) return std::move(v).error();
    out.push_back(std::move(*v));
  }
  return out;
}

void encode(const Value& value, std::vector<uint8_t>& out) {
  switch (value.type) {
    case Type::kNumber:
      out.push_back(static_cast<uint8_t>(Type::kNumber));
      put_double(out, value.number);
      return;
    case Type::kBoolean:
      out.push_back(static_cast<uint8_t>(Type::kBoolean));
      out.push_back(value.boolean ? 1 : 0);
      return;
    case Type::kString:
    case Type::kLongString: {
      bool is_long = value.string.size() > kMaxShortString || value.type == Type::kLongString;
      out.push_back(static_cast<uint8_t>(is_long ? Type::kLongString : Type::kString));
      put_be(out, value.string.size(), is_long ? 4 : 2);
      out.insert(out.end(), value.string.begin(), value.string.end());
      return;
    }
    case Type::kObject:
      out.push_back(static_cast<uint8_t>(Type::kObject));
      put_properties(out, value.properties);
      return;
    case Type::kEcmaArray:
      out.push_back(static_cast<uint8_t>(Type::kEcmaArray));
      put_be(out, value.properties.size(), 4);
      put_properties(out, value.properties);
      return;
    case Type::kStrictArray:
      out.push_back(static_cast<uint8_t>(Type::kStrictArray));
      put_be(out, value.elements.size(), 4);
      for (const Value& e : value.elements) encode(e, out);
      return;
    case Type::kDate:
      out.push_back(static_cast<uint8_t>(Type::kDate));
      put_double(out, value.number);
      put_be(out, static_cast<uint16_t>(value.timezone), 2);
      return;
    case Type::kNull:
    case Type::kUndefined:
    case Type::kObjectEnd:
      out.push_back(static_cast<uint8_t>(value.type));
      return;
  }
}

std::vector<uint8_t> encode_all(std::span<const Value> values) {
  std::vector<uint8_t> out;
  for (const Value& v : values) encode(v, out);
  return out;
}

}  // namespace hawker::media::rtmp::amf0
