#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace hawker::media {

/// The media worker threads: a fixed pool, each thread with its own queue. A stream is pinned to
/// one worker for its whole life, so its media state (normaliser, muxer, encoders) is touched by
/// one thread only and needs no locks. Posting never blocks on the work: a queue is drained by
/// swapping the whole list out under the lock and running it unlocked.
class MediaWorkers {
 public:
  /// max(1, hardware threads - 1): one core stays with the loop.
  static size_t default_count();

  explicit MediaWorkers(size_t count = default_count());
  /// Joins (see stop()).
  ~MediaWorkers();
  MediaWorkers(const MediaWorkers&) = delete;
  MediaWorkers& operator=(const MediaWorkers&) = delete;

  size_t size() const { return workers_.size(); }

  /// The worker with the fewest streams pinned to it; counts it as one stream more. Call
  /// release() with the same index when the stream is gone. Any thread.
  size_t pick();
  void release(size_t worker);
  /// Streams pinned to a worker now.
  size_t streams(size_t worker) const;

  /// Runs `work` on that worker after everything posted to it before. Any thread. Work posted
  /// after stop() is dropped (destroyed on the calling thread).
  void post(size_t worker, std::function<void()> work);

  /// Runs what is queued, then ends and joins every thread. Idempotent.
  void stop();

 private:
  struct Worker {
    std::mutex mutex;
    std::condition_variable wake;
    std::vector<std::function<void()>> queue;
    bool stopping = false;
    size_t streams = 0;  ///< guarded by MediaWorkers::pick_mutex_
    std::thread thread;
  };
  static void run(Worker& worker);

  std::vector<std::unique_ptr<Worker>> workers_;
  mutable std::mutex pick_mutex_;
  bool stopped_ = false;
};

}  // namespace hawker::media
