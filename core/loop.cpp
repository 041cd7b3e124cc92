#include "core/loop.h"

#include <fmt/format.h>
#include <pthread.h>

#include <string>

namespace hawker {

void set_thread_name(std::string_view name) {
  std::string shown(name.substr(0, 15));
  pthread_setname_np(pthread_self(), shown.c_str());
}

Error uv_error(int code, std::string_view what) {
  ErrorCode ec = ErrorCode::kIo;
  if (code == UV_EADDRINUSE || code == UV_EACCES) ec = ErrorCode::kUnavailable;
  if (code == UV_EINVAL) ec = ErrorCode::kInvalidArgument;
  return Error{ec, fmt::format("{}: {}", what, uv_strerror(code))};
}

Loop::Loop() : thread_id_(std::this_thread::get_id()) {
  uv_loop_init(&loop_);
  loop_.data = this;
}

bool take_force_closed(uv_handle_t* handle) {
  auto* loop = static_cast<Loop*>(handle->loop->data);
  return loop != nullptr && loop->take_force_closed(handle);
}

Loop::~Loop() {
  if (!closed_) close();
}

void Loop::run() {
  thread_id_ = std::this_thread::get_id();
  uv_run(&loop_, UV_RUN_DEFAULT);
}

int Loop::close() {
  closed_ = true;
  uv_walk(
      &loop_,
      [](uv_handle_t* h, void* self) {
        if (!uv_is_closing(h)) {
          uv_close(h, nullptr);
          static_cast<Loop*>(self)->force_closed_.insert(h);
        }
      },
      this);
  uv_run(&loop_, UV_RUN_DEFAULT);
  return uv_loop_close(&loop_);
}

Timer::Timer(Loop& loop) : handle_(new uv_timer_t) {
  uv_timer_init(loop.uv(), handle_.get());
  handle_->data = this;
}

Timer::~Timer() { stop(); }

void Timer::start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> fn) {
  fn_ = std::move(fn);
  uv_timer_start(
      handle_.get(),
      [](uv_timer_t* h) {
        auto* self = static_cast<Timer*>(h->data);
        // Copy first: the callback may restart or destroy this timer.
        auto fn = self->fn_;
        if (fn) fn();
      },
      timeout_ms, repeat_ms);
}

void Timer::stop() {
  if (handle_) uv_timer_stop(handle_.get());
}

bool Timer::active() const {
  return handle_ && uv_is_active(reinterpret_cast<uv_handle_t*>(handle_.get()));
}

Mailbox::Mailbox(Loop& loop) : state_(std::make_shared<State>()), handle_(new uv_async_t) {
  uv_async_init(loop.uv(), handle_, &Mailbox::on_async);
  // The handle keeps its own reference to the state, so work arriving while the handle closes
  // finds the state alive.
  handle_->data = new std::shared_ptr<State>(state_);
}

Mailbox::~Mailbox() { close(); }

void Mailbox::post(std::function<void()> work) {
  // Sending under the lock keeps close() from freeing the handle between the check and the send.
  std::lock_guard lock(state_->mutex);
  if (state_->closed) return;
  state_->queue.push_back(std::move(work));
  uv_async_send(handle_);
}

void Mailbox::close() {
  if (handle_ == nullptr) return;
  {
    std::lock_guard lock(state_->mutex);
    state_->closed = true;
    state_->queue.clear();
  }
  auto* h = reinterpret_cast<uv_handle_t*>(handle_);
  if (uv_is_closing(h)) {
    // Loop::close() already closed the handle without freeing it.
    if (take_force_closed(h)) {
      delete static_cast<std::shared_ptr<State>*>(h->data);
      delete handle_;
    }
    handle_ = nullptr;
    return;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) {
    delete static_cast<std::shared_ptr<State>*>(h->data);
    delete reinterpret_cast<uv_async_t*>(h);
  });
  handle_ = nullptr;
}

void Mailbox::on_async(uv_async_t* handle) {
  auto state = *static_cast<std::shared_ptr<State>*>(handle->data);
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(state->mutex);
    batch.swap(state->queue);
  }
  for (auto& work : batch) work();
}

}  // namespace hawker
