#include "core/metrics.h"

#include <dirent.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace hawker {

Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds), counts_(new std::atomic<uint64_t>[bounds.size() + 1]) {
  std::sort(bounds_.begin(), bounds_.end());
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

const std::vector<double>& default_latency_buckets() {
  static const std::vector<double> buckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                              0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
  return buckets;
}

namespace {

template <typename T>
std::unique_ptr<T> make_child(const std::vector<double>&) {
  return std::make_unique<T>();
}
template <>
std::unique_ptr<Histogram> make_child<Histogram>(const std::vector<double>& bounds) {
  return std::make_unique<Histogram>(bounds);
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

std::string label_block(const std::vector<std::string>& names,
                        const std::vector<std::string>& values, std::string_view extra_name = {},
                        std::string_view extra_value = {}) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += fmt::format("{}=\"{}\"", names[i], escape_label_value(values[i]));
  }
  if (!extra_name.empty()) {
    out += out.empty() ? "{" : ",";
    out += fmt::format("{}=\"{}\"", extra_name, extra_value);
  }
  if (!out.empty()) out += "}";
  return out;
}

std::string escape_help(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

template <typename T>
T& Family<T>::with(const std::vector<std::string>& label_values) {
  std::lock_guard lock(mutex_);
  auto it = children_.find(label_values);
  if (it == children_.end()) {
    it = children_.emplace(label_values, make_child<T>(bounds_)).first;
  }
  return *it->second;
}

template <typename T>
void Family<T>::for_each(
    const std::function<void(const std::vector<std::string>&, const T&)>& fn) const {
  std::lock_guard lock(mutex_);
  for (const auto& [labels, child] : children_) fn(labels, *child);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Metrics::Entry* Metrics::find(const std::string& name) {
  for (auto& e : entries_) {
    const std::string& n = e->counter ? e->counter->name()
                           : e->gauge ? e->gauge->name()
                                      : e->histogram->name();
    if (n == name) return e.get();
  }
  return nullptr;
}

Family<Counter>& Metrics::counter(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  if (Entry* e = find(name); e != nullptr && e->counter) return *e->counter;
  auto e = std::make_unique<Entry>();
  e->kind = Entry::Kind::kCounter;
  e->counter = std::make_unique<Family<Counter>>(name, help, std::move(label_names));
  entries_.push_back(std::move(e));
  return *entries_.back()->counter;
}

Family<Gauge>& Metrics::gauge(const std::string& name, const std::string& help,
                              std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  if (Entry* e = find(name); e != nullptr && e->gauge) return *e->gauge;
  auto e = std::make_unique<Entry>();
  e->kind = Entry::Kind::kGauge;
  e->gauge = std::make_unique<Family<Gauge>>(name, help, std::move(label_names));
  entries_.push_back(std::move(e));
  return *entries_.back()->gauge;
}

Family<Histogram>& Metrics::histogram(const std::string& name, const std::string& help,
                                      std::vector<std::string> label_names,
                                      std::vector<double> bounds) {
  std::lock_guard lock(mutex_);
  if (Entry* e = find(name); e != nullptr && e->histogram) return *e->histogram;
  auto e = std::make_unique<Entry>();
  e->kind = Entry::Kind::kHistogram;
  e->histogram =
      std::make_unique<Family<Histogram>>(name, help, std::move(label_names), std::move(bounds));
  entries_.push_back(std::move(e));
  return *entries_.back()->histogram;
}

std::string Metrics::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& e : entries_) {
    switch (e->kind) {
      case Entry::Kind::kCounter: {
        const auto& f = *e->counter;
        out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", f.name(), escape_help(f.help()),
                           f.name());
        f.for_each([&](const std::vector<std::string>& labels, const Counter& c) {
          out += fmt::format("{}{} {}\n", f.name(), label_block(f.label_names(), labels),
                             format_value(c.value()));
        });
        break;
      }
      case Entry::Kind::kGauge: {
        const auto& f = *e->gauge;
        out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", f.name(), escape_help(f.help()),
                           f.name());
        f.for_each([&](const std::vector<std::string>& labels, const Gauge& g) {
          out += fmt::format("{}{} {}\n", f.name(), label_block(f.label_names(), labels),
                             format_value(g.value()));
        });
        break;
      }
      case Entry::Kind::kHistogram: {
        const auto& f = *e->histogram;
        out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", f.name(), escape_help(f.help()),
                           f.name());
        f.for_each([&](const std::vector<std::string>& labels, const Histogram& h) {
          uint64_t cumulative = 0;
          for (size_t i = 0; i < h.bounds().size(); ++i) {
            cumulative += h.bucket_count(i);
            out +=
                fmt::format("{}_bucket{} {}\n", f.name(),
                            label_block(f.label_names(), labels, "le", format_value(h.bounds()[i])),
                            cumulative);
          }
          cumulative += h.bucket_count(h.bounds().size());
          out += fmt::format("{}_bucket{} {}\n", f.name(),
                             label_block(f.label_names(), labels, "le", "+Inf"), cumulative);
          out += fmt::format("{}_sum{} {}\n", f.name(), label_block(f.label_names(), labels),
                             format_value(h.sum()));
          out += fmt::format("{}_count{} {}\n", f.name(), label_block(f.label_names(), labels),
                             cumulative);
        });
        break;
      }
    }
  }
  return out;
}

namespace {

// Start time from the kernel's own record: field 22 of /proc/self/stat counts clock ticks since
// boot, and /proc/stat's btime is the boot time. Falls back to the time this library loaded.
double process_start_seconds() {
  static const double start = [] {
    double fallback =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    std::ifstream stat("/proc/self/stat");
    std::string line;
    if (!std::getline(stat, line)) return fallback;
    // The command name (field 2) may hold spaces; fields after it follow the last ')'.
    size_t close = line.rfind(')');
    if (close == std::string::npos) return fallback;
    std::istringstream rest(line.substr(close + 1));
    std::string field;
    unsigned long long start_ticks = 0;
    for (int i = 3; i <= 22 && rest >> field; ++i) {
      if (i == 22) start_ticks = std::stoull(field);
    }
    std::ifstream boot("/proc/stat");
    unsigned long long btime = 0;
    while (std::getline(boot, line)) {
      if (line.rfind("btime ", 0) == 0) btime = std::stoull(line.substr(6));
    }
    long ticks = sysconf(_SC_CLK_TCK);
    if (btime == 0 || start_ticks == 0 || ticks <= 0) return fallback;
    return static_cast<double>(btime) + static_cast<double>(start_ticks) / ticks;
  }();
  return start;
}

}  // namespace

void collect_process_metrics(Metrics& metrics) {
  long page = sysconf(_SC_PAGESIZE);
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    unsigned long long size = 0, resident = 0;
    if (std::fscanf(f, "%llu %llu", &size, &resident) == 2) {
      metrics.gauge("process_resident_memory_bytes", "Resident memory size in bytes.")
          .with({})
          .set(static_cast<double>(resident) * page);
      metrics.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.")
          .with({})
          .set(static_cast<double>(size) * page);
    }
    std::fclose(f);
  }

  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) == 0) {
    double cpu = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec +
                 usage.ru_stime.tv_usec / 1e6;
    metrics.counter("process_cpu_seconds_total", "Total user and system CPU time in seconds.")
        .with({})
        .set_total(cpu);
  }

  if (DIR* dir = opendir("/proc/self/fd")) {
    int count = 0;
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') ++count;
    }
    closedir(dir);
    // The directory stream itself holds one descriptor while counting.
    metrics.gauge("process_open_fds", "Number of open file descriptors.").with({}).set(count - 1);
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    metrics.gauge("process_max_fds", "Maximum number of open file descriptors.")
        .with({})
        .set(static_cast<double>(limit.rlim_cur));
  }
  metrics.gauge("process_start_time_seconds", "Start time of the process since the Unix epoch.")
      .with({})
      .set(process_start_seconds());
}

}  // namespace hawker
