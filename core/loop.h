#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include "core/result.h"

namespace hawker {

/// Turns a libuv error code into an Error with context.
Error uv_error(int code, std::string_view what);

/// Closes any libuv handle and frees its memory in the close callback, never before: the rule
/// libuv sets for handle lifetime. `handle` must have been allocated with `new T`.
bool take_force_closed(uv_handle_t* handle);

template <typename T>
void close_and_delete(T* handle) {
  uv_handle_t* h = reinterpret_cast<uv_handle_t*>(handle);
  if (uv_is_closing(h)) {
    // Loop::close() closed it for its owner, without a callback to free it: free it now.
    if (take_force_closed(h)) delete handle;
    return;
  }
  uv_close(h, [](uv_handle_t* closed) { delete reinterpret_cast<T*>(closed); });
}

/// Owns a heap-allocated libuv handle; its deleter calls uv_close and frees in the close callback.
template <typename T>
struct UvCloser {
  void operator()(T* h) const {
    if (h != nullptr) close_and_delete(h);
  }
};
template <typename T>
using UvPtr = std::unique_ptr<T, UvCloser<T>>;

/// Names the calling thread as `top -H`, `ps -L` and perf show it (the kernel keeps the first
/// 15 bytes).
void set_thread_name(std::string_view name);

/// The event loop and the thread that runs it.
class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  uv_loop_t* uv() { return &loop_; }
  /// Runs until stop() or until nothing is left; records the running thread.
  void run();
  void stop() { uv_stop(&loop_); }
  bool on_loop_thread() const { return std::this_thread::get_id() == thread_id_; }
  /// Closes every remaining handle and runs the loop until they are gone; returns
  /// uv_loop_close's answer (0 when nothing leaked). Handles whose owners still live are
  /// remembered, so that their owners free them when they go (take_force_closed()).
  int close();

  /// Whether close() closed `handle` on its owner's behalf; forgets it.
  bool take_force_closed(uv_handle_t* handle) { return force_closed_.erase(handle) > 0; }

 private:
  std::unordered_set<uv_handle_t*> force_closed_;
  uv_loop_t loop_;
  std::thread::id thread_id_;
  bool closed_ = false;
};

/// A one-shot or repeating timer on the loop. Stopping or destroying it cancels the callback.
class Timer {
 public:
  explicit Timer(Loop& loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> fn);
  void stop();
  bool active() const;

 private:
  UvPtr<uv_timer_t> handle_;
  std::function<void()> fn_;
};

/// Posts work onto the loop from any thread. Work queued from many threads is drained in one
/// pass: the whole list is swapped out under the lock and run without it (as h2o's
/// multithread queue does), so posting never waits for the work.
class Mailbox {
 public:
  explicit Mailbox(Loop& loop);
  ~Mailbox();
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  /// Thread-safe. Work posted after close() is dropped.
  void post(std::function<void()> work);
  /// Stops accepting work and releases the handle; call on the loop thread.
  void close();

 private:
  struct State {
    std::mutex mutex;
    std::vector<std::function<void()>> queue;
    bool closed = false;
  };
  static void on_async(uv_async_t* handle);

  std::shared_ptr<State> state_;
  uv_async_t* handle_ = nullptr;
};

}  // namespace hawker
