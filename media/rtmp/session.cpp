#include "media/rtmp/session.h"

#include <fmt/format.h>

#include "core/log.h"

namespace hawker::media::rtmp {

namespace {

using amf0::Value;

constexpr uint32_t kCommandCsid = 3;
constexpr uint32_t kStatusCsid = 5;
constexpr uint32_t kMaxStreams = 16;
constexpr size_t kFlvTagHeaderSize = 11;
constexpr size_t kFlvBackPointerSize = 4;

Error protocol_error(std::string message) {
  return Error{ErrorCode::kProtocol, "rtmp: " + std::move(message)};
}

uint32_t be_n(std::span<const uint8_t> p, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) v = v << 8 | p[i];
  return v;
}

/// Splits "key?a=b" into the key and the query.
std::pair<std::string, std::string> split_query(std::string_view name) {
  size_t q = name.find('?');
  if (q == std::string_view::npos) return {std::string(name), {}};
  return {std::string(name.substr(0, q)), std::string(name.substr(q + 1))};
}

}  // namespace

const char* to_string(Session::State state) {
  switch (state) {
    case Session::State::kHandshake:
      return "handshake";
    case Session::State::kAwaitConnect:
      return "await-connect";
    case Session::State::kConnected:
      return "connected";
    case Session::State::kPublishPending:
      return "publish-pending";
    case Session::State::kPublishing:
      return "publishing";
    case Session::State::kRejected:
      return "rejected";
    case Session::State::kFailed:
      return "failed";
  }
  return "unknown";
}

Session::Session(SessionEvents& events, SendFn send, SessionLimits limits,
                 ServerHandshake::RandomSource random)
    : events_(events),
      send_(std::move(send)),
      limits_(limits),
      handshake_(std::move(random)),
      reader_(limits.chunk) {}

void Session::feed(std::span<const uint8_t> bytes) {
  if (state_ == State::kFailed || state_ == State::kRejected) return;
  bytes_received_ += bytes.size();
  if (state_ == State::kHandshake) {
    auto used = handshake_.feed(bytes, out_);
    if (!used) {
      fail(std::move(used).error());
      flush();
      return;
    }
    bytes = bytes.subspan(*used);
    if (handshake_.done()) state_ = State::kAwaitConnect;
  }
  if (state_ != State::kHandshake && !bytes.empty()) {
    Status status =
        reader_.feed(bytes, [this](Message&& msg) { return on_message(std::move(msg)); });
    if (!status && state_ != State::kFailed) fail(std::move(status).error());
  }
  maybe_acknowledge();
  flush();
}

Status Session::on_message(Message&& msg) {
  // After a refusal the connection only waits to be closed.
  if (state_ == State::kFailed || state_ == State::kRejected) return ok_status();
  switch (msg.type_id) {
    case message_type::kSetChunkSize:
    case message_type::kAbort:
    case message_type::kAcknowledgement:
    case message_type::kSetPeerBandwidth:
      return ok_status();
    case message_type::kWindowAckSize:
      if (msg.payload.size() < 4) return protocol_error("short Window Acknowledgement Size");
      peer_window_ = be_n(msg.payload, 4);
      return ok_status();
    case message_type::kUserControl:
      return on_user_control(msg);
    case message_type::kCommandAmf0:
      return on_command(msg, msg.payload);
    case message_type::kCommandAmf3:
      // AMF3 command messages start with a format byte, then AMF0 values.
      if (msg.payload.empty()) return protocol_error("empty AMF3 command");
      return on_command(msg, std::span<const uint8_t>(msg.payload).subspan(1));
    case message_type::kDataAmf0:
      return on_data(msg, msg.payload);
    case message_type::kDataAmf3:
      if (msg.payload.empty()) return ok_status();
      return on_data(msg, std::span<const uint8_t>(msg.payload).subspan(1));
    case message_type::kAudio:
    case message_type::kVideo:
    case message_type::kAggregate:
      return on_media(msg);
    default:
      log::debug("rtmp", "ignoring message type {} ({} bytes)", msg.type_id, msg.payload.size());
      return ok_status();
  }
}

Status Session::on_user_control(const Message& msg) {
  if (msg.payload.size() < 2) return protocol_error("short User Control message");
  auto event = static_cast<UserControlEvent>(be_n(msg.payload, 2));
  if (event == UserControlEvent::kPingRequest) {
    if (msg.payload.size() < 6) return protocol_error("short PingRequest");
    writer_.write_user_control(UserControlEvent::kPingResponse,
                               be_n(std::span<const uint8_t>(msg.payload).subspan(2), 4), out_);
  }
  return ok_status();
}

Status Session::on_command(const Message& msg, std::span<const uint8_t> body) {
  auto values = amf0::decode_all(body, limits_.amf0);
  if (!values) return std::move(values).error().with_context("rtmp: command");
  const std::vector<Value>& args = *values;
  if (args.empty() || !args[0].is_string()) return protocol_error("command without a name");
  const std::string& name = args[0].string;
  double txid = args.size() > 1 && args[1].is_number() ? args[1].number : 0;

  if (name == "connect") return handle_connect(txid, args);
  if (state_ == State::kAwaitConnect) {
    return protocol_error(fmt::format("command '{}' before connect", name));
  }
  if (name == "releaseStream") {
    send_result(0, txid, {Value::make_null(), Value::make_undefined()});
  } else if (name == "FCPublish") {
    std::string stream = args.size() > 3 && args[3].is_string() ? args[3].string : "";
    Value info = Value::make_object({{"code", Value::make_string("NetStream.Publish.Start")},
                                     {"description", Value::make_string(stream)}});
    std::vector<Value> reply{Value::make_string("onFCPublish"), Value::make_number(0),
                             Value::make_null(), info};
    writer_.write_command(kCommandCsid, 0, reply, out_);
    send_result(0, txid, {Value::make_null(), Value::make_undefined()});
  } else if (name == "createStream") {
    if (next_stream_id_ > kMaxStreams) return protocol_error("too many createStream calls");
    send_result(0, txid, {Value::make_null(), Value::make_number(next_stream_id_++)});
  } else if (name == "publish") {
    return handle_publish(txid, msg, args);
  } else if (name == "FCUnpublish") {
    stop_publishing();
    send_result(0, txid, {Value::make_null(), Value::make_undefined()});
  } else if (name == "deleteStream" || name == "closeStream") {
    stop_publishing();
  } else if (name == "play" || name == "play2") {
    send_status(msg.stream_id, "error", "NetStream.Play.Failed",
                "This server only accepts published streams; playback is over HLS.");
  } else {
    log::debug("rtmp", "ignoring command '{}'", name);
  }
  return ok_status();
}

Status Session::handle_connect(double txid, const std::vector<Value>& args) {
  if (state_ != State::kAwaitConnect) return protocol_error("connect on a connected session");
  if (args.size() < 3 || !args[2].is_object_like()) {
    return protocol_error("connect without a command object");
  }
  std::string app = args[2].string_at("app");
  app = split_query(app).first;
  while (!app.empty() && app.back() == '/') app.pop_back();
  app_ = std::move(app);

  writer_.write_window_ack_size(limits_.window_ack_size, out_);
  writer_.write_set_peer_bandwidth(limits_.window_ack_size, 2, out_);
  writer_.write_set_chunk_size(limits_.out_chunk_size, out_);
  Value properties = Value::make_object({{"fmsVer", Value::make_string("FMS/3,5,7,7009")},
                                         {"capabilities", Value::make_number(31)},
                                         {"mode", Value::make_number(1)}});
  Value info = Value::make_object(
      {{"level", Value::make_string("status")},
       {"code", Value::make_string("NetConnection.Connect.Success")},
       {"description", Value::make_string("Connection succeeded.")},
       {"objectEncoding", Value::make_number(args[2].number_at("objectEncoding", 0))}});
  send_result(0, txid, {properties, info});
  state_ = State::kConnected;
  return ok_status();
}

Status Session::handle_publish(double txid, const Message& msg, const std::vector<Value>& args) {
  (void)txid;
  if (state_ != State::kConnected) {
    send_status(msg.stream_id, "error", "NetStream.Publish.BadName",
                "This connection is already publishing.");
    return protocol_error("publish while already publishing");
  }
  if (args.size() < 4 || !args[3].is_string()) return protocol_error("publish without a name");
  auto [key, query] = split_query(args[3].string);
  publish_stream_id_ = msg.stream_id;
  if (key.empty()) {
    send_status(publish_stream_id_, "error", "NetStream.Publish.BadName", "Empty stream key.");
    state_ = State::kRejected;
    return Error{ErrorCode::kInvalidArgument, "rtmp: publish with an empty stream key"};
  }
  stream_name_ = std::move(key);
  state_ = State::kPublishPending;
  events_.on_publish_request(app_, stream_name_, query);
  return ok_status();
}

void Session::accept_publish() {
  if (state_ != State::kPublishPending) return;
  state_ = State::kPublishing;
  writer_.write_user_control(UserControlEvent::kStreamBegin, publish_stream_id_, out_);
  send_status(publish_stream_id_, "status", "NetStream.Publish.Start",
              fmt::format("{} is now published.", app_));
  flush();
}

void Session::reject_publish(std::string_view reason) {
  if (state_ != State::kPublishPending) return;
  state_ = State::kRejected;
  send_status(publish_stream_id_, "error", "NetStream.Publish.BadName", reason);
  flush();
}

void Session::stop_publishing() {
  if (state_ == State::kPublishing) {
    state_ = State::kConnected;
    events_.on_unpublish();
  } else if (state_ == State::kPublishPending) {
    state_ = State::kConnected;
  }
}

Status Session::on_data(const Message& msg, std::span<const uint8_t> body) {
  (void)msg;
  auto values = amf0::decode_all(body, limits_.amf0);
  if (!values) return std::move(values).error().with_context("rtmp: data message");
  const std::vector<Value>& v = *values;
  size_t at = 0;
  if (!v.empty() && v[0].is_string() && v[0].string == "@setDataFrame") at = 1;
  if (v.size() > at + 1 && v[at].is_string() && v[at].string == "onMetaData" &&
      v[at + 1].is_object_like() && state_ == State::kPublishing) {
    events_.on_metadata(v[at + 1]);
  }
  return ok_status();
}

Status Session::on_media(const Message& msg) {
  // Media before NetStream.Publish.Start has nowhere to go yet.
  if (state_ != State::kPublishing) return ok_status();
  auto deliver = [this](uint8_t type, uint32_t timestamp, std::span<const uint8_t> body) -> Status {
    auto content =
        type == message_type::kAudio ? tags_.audio(timestamp, body) : tags_.video(timestamp, body);
    if (!content) return std::move(content).error();
    if (auto* config = std::get_if<TrackConfig>(&*content)) {
      events_.on_track_config(*config);
    } else if (auto* packet = std::get_if<Packet>(&*content)) {
      events_.on_packet(std::move(*packet));
    }
    return ok_status();
  };
  if (msg.type_id != message_type::kAggregate) {
    if (msg.payload.empty()) return ok_status();
    return deliver(msg.type_id, msg.timestamp, msg.payload);
  }
  // An aggregate message is a run of FLV tags whose timestamps are relative to the first one.
  std::span<const uint8_t> rest(msg.payload);
  bool first = true;
  uint32_t base = 0;
  while (!rest.empty()) {
    if (rest.size() < kFlvTagHeaderSize) return protocol_error("truncated aggregate tag header");
    uint8_t type = rest[0] & 0x1f;
    size_t size = be_n(rest.subspan(1), 3);
    uint32_t ts = be_n(rest.subspan(4), 3) | uint32_t{rest[7]} << 24;
    if (rest.size() - kFlvTagHeaderSize < size + kFlvBackPointerSize) {
      return protocol_error("truncated aggregate tag body");
    }
    if (first) base = ts;
    first = false;
    std::span<const uint8_t> body = rest.subspan(kFlvTagHeaderSize, size);
    if ((type == message_type::kAudio || type == message_type::kVideo) && !body.empty()) {
      Status st = deliver(type, msg.timestamp + (ts - base), body);
      if (!st || state_ != State::kPublishing) return st;
    }
    rest = rest.subspan(kFlvTagHeaderSize + size + kFlvBackPointerSize);
  }
  return ok_status();
}

void Session::send_result(uint32_t stream_id, double txid, std::vector<Value> values) {
  std::vector<Value> msg{Value::make_string("_result"), Value::make_number(txid)};
  for (auto& v : values) msg.push_back(std::move(v));
  writer_.write_command(kCommandCsid, stream_id, msg, out_);
}

void Session::send_status(uint32_t stream_id, std::string_view level, std::string_view code,
                          std::string_view description) {
  Value info = Value::make_object({{"level", Value::make_string(std::string(level))},
                                   {"code", Value::make_string(std::string(code))},
                                   {"description", Value::make_string(std::string(description))}});
  std::vector<Value> msg{Value::make_string("onStatus"), Value::make_number(0), Value::make_null(),
                         info};
  writer_.write_command(kStatusCsid, stream_id, msg, out_);
}

void Session::maybe_acknowledge() {
  if (peer_window_ == 0 || state_ == State::kFailed) return;
  if (bytes_received_ - acked_at_ >= peer_window_) {
    acked_at_ = bytes_received_;
    writer_.write_acknowledgement(static_cast<uint32_t>(bytes_received_), out_);
  }
}

void Session::fail(Error error) {
  if (state_ == State::kFailed) return;
  state_ = State::kFailed;
  events_.on_error(error);
}

void Session::flush() {
  if (out_.empty() || !send_) return;
  std::vector<uint8_t> bytes = std::move(out_);
  out_.clear();
  send_(std::move(bytes));
}

}  // namespace hawker::media::rtmp
