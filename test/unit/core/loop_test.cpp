#include "core/loop.h"

#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <thread>

using namespace hawker;

TEST_CASE("mailbox runs work posted from other threads on the loop") {
  Loop loop;
  Mailbox mailbox(loop);
  std::atomic<int> seen{0};
  bool ran_on_loop = true;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 250; ++i) {
        mailbox.post([&] {
          ran_on_loop = ran_on_loop && loop.on_loop_thread();
          if (++seen == 1000) mailbox.close();
        });
      }
    });
  }
  loop.run();
  for (auto& t : threads) t.join();
  CHECK(seen == 1000);
  CHECK(ran_on_loop);
  CHECK(loop.close() == 0);
}

TEST_CASE("timers fire, repeat and stop") {
  Loop loop;
  int fired = 0;
  {
    Timer timer(loop);
    timer.start(1, 1, [&] {
      if (++fired == 3) timer.stop();
    });
    loop.run();
  }
  CHECK(fired == 3);
  CHECK(loop.close() == 0);
}

TEST_CASE("a destroyed timer never fires and leaks no handle") {
  Loop loop;
  bool fired = false;
  {
    Timer timer(loop);
    timer.start(1, 0, [&] { fired = true; });
  }
  loop.run();
  CHECK_FALSE(fired);
  CHECK(loop.close() == 0);
}

TEST_CASE("handles still owned when the loop closes are freed by their owners") {
  Loop loop;
  auto timer = std::make_unique<Timer>(loop);
  timer->start(1000, 0, [] {});
  auto mailbox = std::make_unique<Mailbox>(loop);
  // The loop closes first, as at the end of a test; the owners go afterwards. Under
  // AddressSanitizer a handle nobody freed fails this test as a leak.
  CHECK(loop.close() == 0);
  timer.reset();
  mailbox.reset();
}
