#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace hawker {

/// A monotonically increasing value. Updates are lock-free and safe from any thread.
class Counter {
 public:
  void inc(double by = 1.0) { value_.fetch_add(by, std::memory_order_relaxed); }
  /// Mirrors a total kept elsewhere (CPU seconds from getrusage); the caller keeps it monotonic.
  void set_total(double total) { value_.store(total, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

/// A value that goes up and down. Updates are lock-free and safe from any thread.
class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void inc(double by = 1.0) { value_.fetch_add(by, std::memory_order_relaxed); }
  void dec(double by = 1.0) { value_.fetch_sub(by, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

/// Cumulative buckets with fixed upper bounds, plus sum and count, as Prometheus expects.
class Histogram {
 public:
  explicit Histogram(const std::vector<double>& bounds);
  void observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  /// Observations that fell into bucket `i` alone (not cumulative); index bounds().size() is +Inf.
  uint64_t bucket_count(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0.0};
};

/// Latency buckets in seconds, from 1 ms to 10 s.
const std::vector<double>& default_latency_buckets();

/// One metric name with a fixed list of label names; each distinct set of label values is a
/// child created on first use and kept for the life of the registry (references stay valid).
template <typename T>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        bounds_(std::move(bounds)) {}

  /// The child for these label values, in the order of the label names. Takes a lock; hot paths
  /// may keep the returned reference.
  T& with(const std::vector<std::string>& label_values);

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  /// Calls fn(label_values, child) for every child, under the family lock.
  void for_each(const std::function<void(const std::vector<std::string>&, const T&)>& fn) const;

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;
};

/// The process-wide set of metrics, rendered in the Prometheus text exposition format (0.0.4).
/// Registering the same name twice returns the family registered first.
class Metrics {
 public:
  Metrics() = default;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  Family<Counter>& counter(const std::string& name, const std::string& help,
                           std::vector<std::string> label_names = {});
  Family<Gauge>& gauge(const std::string& name, const std::string& help,
                       std::vector<std::string> label_names = {});
  Family<Histogram>& histogram(const std::string& name, const std::string& help,
                               std::vector<std::string> label_names,
                               std::vector<double> bounds = default_latency_buckets());

  /// Text exposition of every family, in registration order.
  std::string render() const;

 private:
  struct Entry {
    enum class Kind { kCounter, kGauge, kHistogram } kind;
    std::unique_ptr<Family<Counter>> counter;
    std::unique_ptr<Family<Gauge>> gauge;
    std::unique_ptr<Family<Histogram>> histogram;
  };
  Entry* find(const std::string& name);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

/// Updates the standard `process_*` metrics (resident memory from /proc/self/statm, CPU seconds
/// from getrusage, open and maximum file descriptors, start time). Call at scrape time.
void collect_process_metrics(Metrics& metrics);

/// Escapes a label value for the exposition format (backslash, double quote, newline).
std::string escape_label_value(std::string_view v);

}  // namespace hawker
