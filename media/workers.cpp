#include "media/workers.h"

#include <algorithm>
#include <utility>

#include "core/loop.h"

namespace hawker::media {

size_t MediaWorkers::default_count() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 1 ? hw - 1 : 1;
}

MediaWorkers::MediaWorkers(size_t count) {
  count = std::max<size_t>(count, 1);
  workers_.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    workers_.push_back(std::make_unique<Worker>());
  }
  // Started after every Worker exists, so no thread sees the vector grow.
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    w->thread = std::thread([w] { run(*w); });
  }
}

MediaWorkers::~MediaWorkers() { stop(); }

size_t MediaWorkers::pick() {
  std::lock_guard lock(pick_mutex_);
  size_t best = 0;
  for (size_t i = 1; i < workers_.size(); ++i) {
    if (workers_[i]->streams < workers_[best]->streams) {
      best = i;
    }
  }
  ++workers_[best]->streams;
  return best;
}

void MediaWorkers::release(size_t worker) {
  std::lock_guard lock(pick_mutex_);
  if (worker < workers_.size() && workers_[worker]->streams > 0) {
    --workers_[worker]->streams;
  }
}

size_t MediaWorkers::streams(size_t worker) const {
  std::lock_guard lock(pick_mutex_);
  return worker < workers_.size() ? workers_[worker]->streams : 0;
}

void MediaWorkers::post(size_t worker, std::function<void()> work) {
  if (worker >= workers_.size()) {
    return;
  }
  Worker& w = *workers_[worker];
  {
    std::lock_guard lock(w.mutex);
    if (w.stopping) {
      return;
    }
    w.queue.push_back(std::move(work));
  }
  w.wake.notify_one();
}

void MediaWorkers::stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  for (auto& worker : workers_) {
    {
      std::lock_guard lock(worker->mutex);
      worker->stopping = true;
    }
    worker->wake.notify_one();
  }
  for (auto& worker : workers_) {
    if (worker->thread.joinable()) {
      worker->thread.join();
    }
  }
}

void MediaWorkers::run(Worker& worker) {
  set_thread_name("media-worker");
  std::vector<std::function<void()>> batch;
  for (;;) {
    {
      std::unique_lock lock(worker.mutex);
      worker.wake.wait(lock, [&worker] { return worker.stopping || !worker.queue.empty(); });
      if (worker.queue.empty()) {
        return;  // stopping, and everything queued before has run
      }
      batch.swap(worker.queue);
    }
    for (auto& work : batch) {
      work();
    }
    // Destroyed here, on the worker, so media state captured by the work dies on its thread.
    batch.clear();
  }
}

}  // namespace hawker::media
