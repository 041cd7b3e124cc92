#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "core/result.h"
#include "storage/sqlite.h"

namespace hawker::storage::detail {

class Job;

/// What the writer calls for a run of consecutive jobs of one JobGroup (storage/store.h):
/// type-erased, so the writer needs to know only which jobs belong together.
class GroupRunner {
 public:
  virtual ~GroupRunner() = default;
  /// Runs `jobs` (all of this runner's, in queue order) as one piece of work. On success each
  /// job holds its result; on error nothing of theirs holds a result yet, and the writer undoes
  /// whatever was written and runs each job alone.
  virtual Status run_jobs(Database& db, std::span<Job* const> jobs) = 0;
};

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
  /// The group whose runner may take this job together with its neighbours, or null.
  virtual GroupRunner* group() const { return nullptr; }

 private:
  bool deliver_inline_;
  bool rerunnable_;
};

/// A job that keeps its result (R is Result<T> or Status) until the caller's callback takes it.
template <typename R>
class ResultJob : public Job {
 public:
  using Done = std::function<void(R)>;

  ResultJob(Done done, bool deliver_inline, bool rerunnable)
      : Job(deliver_inline, rerunnable), done_(std::move(done)) {}

  void fail(Error error) override { result_.emplace(std::move(error)); }

  void deliver() override {
    if (!result_) result_.emplace(Error{ErrorCode::kInternal, "storage job never ran"});
    if (done_) done_(std::move(*result_));
  }

 protected:
  /// Keeps `result`; returns whether the work succeeded.
  Status keep(R result) {
    result_.emplace(std::move(result));
    if (*result_) return ok_status();
    return result_->error();
  }

 private:
  Done done_;
  std::optional<R> result_;
};

/// A job that is a function of the database.
template <typename R>
class BasicJob final : public ResultJob<R> {
 public:
  using Work = std::function<R(Database&)>;

  BasicJob(Work work, typename ResultJob<R>::Done done, bool deliver_inline,
           bool rerunnable = false)
      : ResultJob<R>(std::move(done), deliver_inline, rerunnable), work_(std::move(work)) {}

  Status run(Database& db) override {
    if (!work_) return this->keep(Error{ErrorCode::kInvalidArgument, "storage job has no work"});
    return this->keep(work_(db));
  }

 private:
  Work work_;
};

/// A job of a JobGroup<In, Out>: its input, and the group that runs it alone or with others.
/// It is rerunnable, as the group promises.
template <typename In, typename Out, typename Group>
class GroupJob final : public ResultJob<Result<Out>> {
 public:
  GroupJob(std::shared_ptr<Group> group, In input, typename ResultJob<Result<Out>>::Done done)
      : ResultJob<Result<Out>>(std::move(done), false, true),
        group_(std::move(group)),
        input_(std::move(input)) {}

  GroupRunner* group() const override { return group_.get(); }
  const In& input() const { return input_; }
  /// The job's outcome, from a run of its group.
  void set(Out out) { (void)this->keep(Result<Out>(std::move(out))); }

  Status run(Database& db) override { return this->keep(group_->run_one(db, input_)); }

 private:
  std::shared_ptr<Group> group_;
  In input_;
};

}  // namespace hawker::storage::detail
