#include "media/workers.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace hawker::media {
namespace {

TEST_CASE("media workers: default count leaves a core to the loop, at least one") {
  CHECK(MediaWorkers::default_count() >= 1);
  const unsigned hw = std::thread::hardware_concurrency();
  if (hw > 1) {
    CHECK(MediaWorkers::default_count() == hw - 1);
  }
}

TEST_CASE("media workers: pick spreads streams to the least loaded worker") {
  MediaWorkers workers(3);
  CHECK(workers.size() == 3);
  std::set<size_t> first_three = {workers.pick(), workers.pick(), workers.pick()};
  CHECK(first_three.size() == 3);
  size_t fourth = workers.pick();
  CHECK(workers.streams(fourth) == 2);
  workers.release(1);
  if (fourth != 1) {
    CHECK(workers.pick() == 1);  // the one that lost its stream is the least loaded now
  }
  workers.release(99);  // out of range: ignored
}

TEST_CASE("media workers: a worker runs its work in order, on one thread") {
  MediaWorkers workers(2);
  std::mutex mutex;
  std::vector<int> order;
  std::set<std::thread::id> threads;
  for (int i = 0; i < 1000; ++i) {
    workers.post(1, [&, i] {
      std::lock_guard lock(mutex);
      order.push_back(i);
      threads.insert(std::this_thread::get_id());
    });
  }
  workers.stop();  // runs what is queued, then joins
  REQUIRE(order.size() == 1000);
  for (int i = 0; i < 1000; ++i) {
    CHECK(order[static_cast<size_t>(i)] == i);
  }
  CHECK(threads.size() == 1);
  CHECK(threads.count(std::this_thread::get_id()) == 0);
}

TEST_CASE("media workers: work posted after stop is dropped, and stop is idempotent") {
  MediaWorkers workers(1);
  std::atomic<int> ran{0};
  workers.post(0, [&] { ++ran; });
  workers.stop();
  CHECK(ran == 1);
  auto captured = std::make_shared<int>(7);
  workers.post(0, [&ran, captured] { ++ran; });
  CHECK(ran == 1);
  CHECK(captured.use_count() == 1);  // the refused work was destroyed, not kept
  workers.stop();
  workers.post(5, [&] { ++ran; });  // no such worker
  CHECK(ran == 1);
}

TEST_CASE("media workers: captured state is destroyed on the worker thread") {
  MediaWorkers workers(1);
  std::atomic<bool> destroyed_on_worker{false};
  std::thread::id worker_thread;
  struct Probe {
    std::atomic<bool>* flag;
    std::thread::id* worker;
    ~Probe() { flag->store(std::this_thread::get_id() == *worker); }
  };
  workers.post(0, [&] { worker_thread = std::this_thread::get_id(); });
  {
    std::shared_ptr<Probe> probe(new Probe{&destroyed_on_worker, &worker_thread});
    workers.post(0, [probe = std::move(probe)] {});
  }
  workers.stop();
  CHECK(destroyed_on_worker);
}

}  // namespace
}  // namespace hawker::media
