#include "core/metrics.h"

#include <doctest/doctest.h>

#include <thread>
#include <vector>

using namespace hawker;

TEST_CASE("metrics render in the Prometheus text format") {
  Metrics m;
  auto& requests = m.counter("hawker_test_requests_total", "Requests.", {"route", "status"});
  requests.with({"/a", "200"}).inc();
  requests.with({"/a", "200"}).inc(2);
  requests.with({"/b\"x\n", "404"}).inc();
  m.gauge("hawker_test_open", "Open things.").with({}).set(3);
  auto& latency = m.histogram("hawker_test_seconds", "Latency.", {"route"}, {0.1, 1});
  latency.with({"/a"}).observe(0.05);
  latency.with({"/a"}).observe(0.5);
  latency.with({"/a"}).observe(5);
  std::string text = m.render();
  CHECK(text.find("# TYPE hawker_test_requests_total counter\n") != std::string::npos);
  CHECK(text.find("hawker_test_requests_total{route=\"/a\",status=\"200\"} 3\n") !=
        std::string::npos);
  CHECK(text.find("hawker_test_requests_total{route=\"/b\\\"x\\n\",status=\"404\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("hawker_test_open 3\n") != std::string::npos);
  CHECK(text.find("hawker_test_seconds_bucket{route=\"/a\",le=\"0.1\"} 1\n") != std::string::npos);
  CHECK(text.find("hawker_test_seconds_bucket{route=\"/a\",le=\"1\"} 2\n") != std::string::npos);
  CHECK(text.find("hawker_test_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n") != std::string::npos);
  CHECK(text.find("hawker_test_seconds_sum{route=\"/a\"} 5.55\n") != std::string::npos);
  CHECK(text.find("hawker_test_seconds_count{route=\"/a\"} 3\n") != std::string::npos);
  // Registering again returns the same family.
  CHECK(&m.counter("hawker_test_requests_total", "Requests.", {"route", "status"}) == &requests);
}

TEST_CASE("counters add up across threads") {
  Metrics m;
  auto& c = m.counter("hawker_test_total", "Things.").with({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) c.inc();
    });
  }
  for (auto& t : threads) t.join();
  CHECK(c.value() == 40000);
}

TEST_CASE("process metrics describe this process") {
  Metrics m;
  collect_process_metrics(m);
  std::string text = m.render();
  CHECK(m.gauge("process_resident_memory_bytes", "").with({}).value() > 1024 * 1024);
  CHECK(m.gauge("process_open_fds", "").with({}).value() >= 3);
  CHECK(m.gauge("process_start_time_seconds", "").with({}).value() > 1.6e9);
  CHECK(text.find("# TYPE process_cpu_seconds_total counter") != std::string::npos);
}
