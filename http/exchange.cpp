#include "http/exchange.h"

namespace hawker::http {

bool StreamWriter::write(std::string chunk) {
  if (closed_ || exchange_ == nullptr) return false;
  if (chunk.empty()) return buffered() < limits_.high_water;
  pending_bytes_ += chunk.size();
  pending_ += chunk;
  exchange_->notify();
  if (closed_) return false;
  if (buffered() >= limits_.high_water) {
    want_drain_ = true;
    return false;
  }
  return true;
}

std::string StreamWriter::take_pending() {
  std::string out;
  out.swap(pending_);
  pending_bytes_ = 0;
  return out;
}

void StreamWriter::write_done(size_t bytes) {
  in_flight_bytes_ -= std::min(bytes, in_flight_bytes_);
  if (want_drain_ && !closed_ && buffered() < limits_.high_water) {
    want_drain_ = false;
    auto cb = drain_cb_;
    if (cb) cb();
  }
}

void StreamWriter::close() {
  if (closed_) return;
  closed_ = true;
  if (exchange_ != nullptr) exchange_->notify();
  fire_close();
}

void StreamWriter::abort() {
  closed_ = true;
  pending_.clear();
  pending_bytes_ = 0;
  fire_close();
}

void StreamWriter::fire_close() {
  if (close_fired_) return;
  close_fired_ = true;
  // Handlers often capture the writer in these callbacks; dropping them breaks that cycle.
  auto cb = std::move(close_cb_);
  close_cb_ = nullptr;
  drain_cb_ = nullptr;
  if (cb) cb();
}

Exchange::Exchange(ExchangeSink* sink, Request request, StreamLimits stream_limits)
    : sink_(sink), request_(std::move(request)), stream_limits_(stream_limits) {}

Exchange::~Exchange() {
  if (stream_) stream_->detach();
}

void Exchange::respond(Response response) {
  if (aborted_ || state_ != State::kWaiting) return;
  response_ = std::move(response);
  state_ = State::kResponded;
  abort_cb_ = nullptr;
  notify();
}

StreamWriterPtr Exchange::start_stream(int status, Headers headers) {
  if (aborted_ || state_ != State::kWaiting) return nullptr;
  Response r;
  r.status = status;
  r.headers = std::move(headers);
  response_ = std::move(r);
  stream_ = std::make_shared<StreamWriter>(this, stream_limits_);
  state_ = State::kStreaming;
  abort_cb_ = nullptr;
  notify();
  return stream_;
}

std::optional<Response> Exchange::take_response() {
  std::optional<Response> out = std::move(response_);
  response_.reset();
  return out;
}

void Exchange::abort() {
  if (aborted_) return;
  aborted_ = true;
  sink_ = nullptr;
  if (state_ == State::kWaiting) {
    auto cb = std::move(abort_cb_);
    abort_cb_ = nullptr;
    if (cb) cb();
  }
  abort_cb_ = nullptr;
  if (stream_) stream_->abort();
}

void Exchange::notify() {
  if (sink_ != nullptr && !aborted_) sink_->exchange_updated(*this);
}

}  // namespace hawker::http
