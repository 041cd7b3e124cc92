#pragma once

#include <functional>
#include <optional>
#include <utility>

#include "core/result.h"
#include "storage/sqlite.h"

namespace hawker::storage::detail {

/// A unit of work queued to a storage thread, type-erased so one queue carries every result
/// type. The storage thread calls run() (or fail()), then the result is delivered once: on the
/// loop through the Mailbox, or on the storage thread itself for the blocking *_sync helpers.
class Job {
 public:
  explicit Job(bool deliver_inline, bool rerunnable = false)
      : deliver_inline_(deliver_inline), rerunnable_(rerunnable) {}
  virtual ~Job() = default;
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  /// Runs the work and keeps its result; returns whether the work succeeded.
  virtual Status run(Database& db) = 0;
  /// Replaces the result with `error` (a failed COMMIT, a closed store).
  virtual void fail(Error error) = 0;
  /// Hands the result to the caller's callback.
  virtual void deliver() = 0;
  bool deliver_inline() const { return deliver_inline_; }
  /// The job was queued with WriteMode::kRerunnable (see storage/store.h).
  bool rerunnable() const { return rerunnable_; }

 private:
  bool deliver_inline_;
  bool rerunnable_;
};

/// R is Result<T> or Status.
template <typename R>
class BasicJob final : public Job {
 public:
  using Work = std::function<R(Database&)>;
  using Done = std::function<void(R)>;

  BasicJob(Work work, Done done, bool deliver_inline, bool rerunnable = false)
      : Job(deliver_inline, rerunnable), work_(std::move(work)), done_(std::move(done)) {}

  Status run(Database& db) override {
    if (!work_) {
      result_.emplace(Error{ErrorCode::kInvalidArgument, "storage job has no work"});
    } else {
      result_.emplace(work_(db));
    }
    if (*result_) return ok_status();
    return result_->error();
  }

  void fail(Error error) override { result_.emplace(std::move(error)); }

  void deliver() override {
    if (!result_) result_.emplace(Error{ErrorCode::kInternal, "storage job never ran"});
    if (done_) done_(std::move(*result_));
  }

 private:
  Work work_;
  Done done_;
  std::optional<R> result_;
};

}  // namespace hawker::storage::detail
