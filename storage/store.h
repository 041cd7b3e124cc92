#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/loop.h"
#include "core/metrics.h"
#include "core/result.h"
#include "storage/detail/job.h"
#include "storage/migrations.h"
#include "storage/sqlite.h"

namespace hawker::storage {

struct StoreOptions {
  /// The SQLite data file; its directory is created when missing.
  std::string path;
  Synchronous synchronous = Synchronous::kFull;
  /// How long the writer waits for another process (the CLI) holding the write lock.
  int busy_timeout_ms = 5000;
  /// Reader threads, each with its own read-only connection (clamped to 1..8).
  int reader_threads = 2;
  /// Most jobs committed in one transaction.
  size_t max_batch = 1024;
  /// WAL pages after which the writer, once it has handed a batch's answers to the loop, copies
  /// the WAL back into the database file (docs/storage.md). 0: SQLite's own way, inside the
  /// commit that crosses 1000 pages, before its callers hear back.
  int checkpoint_pages = 1000;
  /// Jobs waiting beyond these are refused at once with kResourceExhausted.
  size_t max_write_queue = 16384;
  size_t max_read_queue = 16384;
  /// Where the writer records, when set, how long each batch took (its jobs, COMMIT with its
  /// sync, handing the answers to the loop) and each checkpoint it finished between batches
  /// (the copy of what the checkpointer left and the data file's sync). Every order of a batch
  /// waits for the first; the jobs queued behind it wait for both. `background_checkpoint_seconds`
  /// times the checkpointer thread's rounds, which run while the writer goes on committing.
  /// They must outlive the store.
  Histogram* batch_seconds = nullptr;
  Histogram* checkpoint_seconds = nullptr;
  Histogram* background_checkpoint_seconds = nullptr;
  /// Migrations applied by open(); add each module's list to it.
  Schema schema;
};

/// How a write job is kept apart from the others of its batch transaction.
enum class WriteMode {
  /// The job runs inside its own SAVEPOINT: when it returns an error, whatever it wrote is
  /// rolled back and the rest of the batch commits. SQLite copies every page the job changes
  /// into the savepoint's journal first.
  kSavepoint,
  /// For hot jobs that promise two things: when they return an error they have usually written
  /// nothing yet (a refused order checks before its first write), and their work may be run
  /// again from scratch before the transaction commits (it depends only on the database and
  /// its captures, and touches nothing else). Consecutive rerunnable jobs share one SAVEPOINT;
  /// when one of them fails after writing, that savepoint is rolled back and the others that
  /// had succeeded run again, so the outcome is the same as with kSavepoint, at one journal
  /// copy per page per batch instead of per job.
  kRerunnable,
};

/// Jobs of one kind that the writer may run together. When several of them stand next to each
/// other in the write queue, the writer hands all of them to run_many at once, inside one
/// SAVEPOINT of the batch transaction, so that their statements can each write many rows and
/// read what they share once. A job that stands alone runs through run_one; so does every job
/// of a run whose run_many failed, after the writer rolled back what run_many wrote. Each job
/// is then a WriteMode::kRerunnable job, and run_one must keep that mode's promises. The
/// outcome must be the one run_one would give each input in queue order.
template <typename In, typename Out>
class JobGroup : public detail::GroupRunner {
 public:
  /// One input alone (see above).
  virtual Result<Out> run_one(Database& db, const In& input) = 0;
  /// Every input of a run, in queue order. On success, one value per input in `out`, in the
  /// same order, each committed with the batch. An error means nothing of it is kept.
  virtual Status run_many(Database& db, std::span<const In* const> inputs,
                          std::vector<Out>& out) = 0;

  Status run_jobs(Database& db, std::span<detail::Job* const> jobs) final {
    // The writer hands over only jobs whose group() is this one, and only GroupJobs of this
    // type return it.
    using Job = detail::GroupJob<In, Out, JobGroup>;
    std::vector<const In*> inputs;
    inputs.reserve(jobs.size());
    for (detail::Job* job : jobs) inputs.push_back(&static_cast<Job*>(job)->input());
    std::vector<Out> out;
    out.reserve(jobs.size());
    Status status = run_many(db, inputs, out);
    if (!status) return status;
    if (out.size() != jobs.size()) {
      return Error{ErrorCode::kInternal, "a job group answered a different number of jobs"};
    }
    for (size_t i = 0; i < jobs.size(); ++i) static_cast<Job*>(jobs[i])->set(std::move(out[i]));
    return ok_status();
  }
};

/// Upper bounds of the batch-size histogram buckets; the last count is for larger batches.
inline constexpr std::array<size_t, 11> kBatchSizeBuckets = {1,  2,   4,   8,   16,  32,
                                                             64, 128, 256, 512, 1024};

/// A snapshot of the Store's counters for /metrics.
struct StoreCounters {
  uint64_t commits = 0;
  uint64_t jobs_committed = 0;
  /// Write jobs that returned an error (rolled back alone) or lost their transaction.
  uint64_t jobs_failed = 0;
  uint64_t commit_failures = 0;
  uint64_t reads = 0;
  uint64_t jobs_rejected = 0;
  size_t write_queue_depth = 0;
  size_t read_queue_depth = 0;
  /// Batches by size, not cumulative: [i] counts batches of size <= kBatchSizeBuckets[i] and
  /// greater than the previous bound; the final entry counts larger ones.
  std::array<uint64_t, kBatchSizeBuckets.size() + 1> batch_size_buckets{};
  uint64_t batch_size_sum = 0;
  /// Runs of grouped jobs run together (JobGroup::run_many), the jobs in them, and the runs
  /// that failed and were run job by job instead.
  uint64_t group_runs = 0;
  uint64_t jobs_in_group_runs = 0;
  uint64_t group_fallbacks = 0;
  /// Checkpoints the writer finished between batches (none with checkpoint_pages 0), and the
  /// rounds the checkpointer thread ran before them, copying most of each WAL meanwhile.
  uint64_t checkpoints = 0;
  uint64_t background_checkpoints = 0;
};

/// The database as the rest of hawker sees it. One storage thread owns the write connection
/// and commits queued writes in groups: every job that arrived while the previous COMMIT was
/// syncing runs in the next transaction, each inside its own SAVEPOINT so a failing job rolls
/// back alone. A job's callback runs on the loop only after its COMMIT returned, so nothing is
/// acknowledged before it is durable (with synchronous=FULL). Reads run on a few reader
/// threads with their own connections; under WAL they never wait for the writer. The loop
/// never blocks on SQLite.
///
/// open() and close() run on the loop thread (or before the loop runs). write()/read() may be
/// called from any thread; their callbacks always run on the loop thread.
class Store {
 public:
  Store(Loop& loop, StoreOptions options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// Creates the data file if needed, applies the schema's migrations and starts the threads.
  Status open();
  /// Stops taking work, commits everything already queued, joins the threads and runs the
  /// remaining callbacks (on this thread, which must be the loop thread). Idempotent.
  void close();
  bool is_open() const { return state_ == State::kOpen; }

  /// Queues a write. `done` gets the work's result once the transaction holding it committed,
  /// or the work's own error (only that job rolled back), or the COMMIT's error, or
  /// kResourceExhausted at once when the queue is full. On a store that is not open `done` is
  /// called before write() returns with kUnavailable.
  template <typename T>
  void write(std::function<Result<T>(Database&)> work, std::function<void(Result<T>)> done,
             WriteMode mode = WriteMode::kSavepoint) {
    submit_write(std::make_unique<detail::BasicJob<Result<T>>>(
        std::move(work), std::move(done), false, mode == WriteMode::kRerunnable));
  }
  void write(std::function<Status(Database&)> work, std::function<void(Status)> done);
  /// Queues a write of `group`'s kind: run with the jobs of the same group queued next to it,
  /// or alone (see JobGroup). `done` is called as for the other writes.
  template <typename In, typename Out>
  void write(std::shared_ptr<JobGroup<In, Out>> group, In input,
             std::function<void(Result<Out>)> done) {
    submit_write(std::make_unique<detail::GroupJob<In, Out, JobGroup<In, Out>>>(
        std::move(group), std::move(input), std::move(done)));
  }

  /// Queues a read on a reader thread; the work runs inside one read transaction, so it sees a
  /// single committed snapshot.
  template <typename T>
  void read(std::function<Result<T>(Database&)> work, std::function<void(Result<T>)> done) {
    submit_read(
        std::make_unique<detail::BasicJob<Result<T>>>(std::move(work), std::move(done), false));
  }
  void read(std::function<Status(Database&)> work, std::function<void(Status)> done);

  /// Blocking forms for CLI commands and startup code. They wait for the storage threads, not
  /// for the loop, so they work before the loop runs; never call them on the loop while it
  /// serves traffic, nor from inside a storage job (that is refused).
  template <typename T>
  Result<T> write_sync(std::function<Result<T>(Database&)> work) {
    return run_sync<Result<T>>(std::move(work), true);
  }
  Status write_sync(std::function<Status(Database&)> work);
  template <typename T>
  Result<T> read_sync(std::function<Result<T>(Database&)> work) {
    return run_sync<Result<T>>(std::move(work), false);
  }
  Status read_sync(std::function<Status(Database&)> work);

  StoreCounters counters() const;
  const StoreOptions& options() const { return options_; }

 private:
  enum class State { kNew, kOpen, kClosing, kClosed };

  struct JobQueue {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<std::unique_ptr<detail::Job>> jobs;
    bool accepting = false;
  };

  /// Finished jobs waiting for the loop. Shared with the Mailbox work that drains it, so a
  /// drain never touches a Store that is gone.
  struct Finished {
    std::mutex mutex;
    std::vector<std::unique_ptr<detail::Job>> jobs;
  };

  template <typename R>
  R run_sync(std::function<R(Database&)> work, bool is_write) {
    if (on_storage_thread()) {
      return R(Error{ErrorCode::kInternal,
                     "a blocking storage call from a storage job would "
                     "wait for itself"});
    }
    std::promise<R> promise;
    auto future = promise.get_future();
    auto job = std::make_unique<detail::BasicJob<R>>(
        std::move(work), [&promise](R result) { promise.set_value(std::move(result)); }, true);
    if (is_write) {
      submit_write(std::move(job));
    } else {
      submit_read(std::move(job));
    }
    return future.get();
  }

  static bool on_storage_thread();
  void submit_write(std::unique_ptr<detail::Job> job);
  void submit_read(std::unique_ptr<detail::Job> job);
  void submit(JobQueue& queue, size_t limit, std::atomic<size_t>& depth,
              std::unique_ptr<detail::Job> job);
  /// Delivers a finished job: inline for blocking calls, else through the loop.
  void finish(std::unique_ptr<detail::Job> job);
  static void drain(Finished& finished);

  /// Where a checkpoint stands: the writer asks for a round (kRunning), the checkpointer
  /// thread runs it and reports kDone with the frames it copied, and the writer either asks
  /// for another round or finishes the checkpoint itself between batches (back to kIdle).
  enum class CheckpointRound { kIdle, kRunning, kDone };

  void writer_main(Database db, std::optional<Database> checkpoint_db);
  /// Between batches (and when a round finishes while no job waits): starts, continues or
  /// finishes a checkpoint once the WAL holds checkpoint_pages or more. Writer thread only.
  void checkpoint_step(Database& db);
  void start_checkpoint_round();
  void checkpointer_main(Database db);
  void reader_main(Database db);
  /// SQLite's WAL hook on the write connection: notes the WAL's size after each commit.
  static int on_wal_commit(void* store, sqlite3* db, const char* name, int pages);
  void commit_batch(Database& db, std::vector<std::unique_ptr<detail::Job>>& batch);
  /// After a rerunnable job failed having written: rolls the shared savepoint back and runs
  /// `run` (the jobs of that savepoint that had succeeded) again, appending those that succeed
  /// to `pending`. A job failing again after writing is dropped and the rest rerun once more.
  Status rerun(Database& db, std::vector<detail::Job*>& run, std::vector<detail::Job*>& pending);
  void record_batch(size_t size);

  Loop& loop_;
  StoreOptions options_;
  std::atomic<State> state_{State::kNew};
  std::unique_ptr<Mailbox> mailbox_;
  std::shared_ptr<Finished> finished_ = std::make_shared<Finished>();
  JobQueue writes_;
  JobQueue reads_;
  std::thread writer_;
  std::vector<std::thread> readers_;

  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> jobs_committed_{0};
  std::atomic<uint64_t> jobs_failed_{0};
  std::atomic<uint64_t> commit_failures_{0};
  std::atomic<uint64_t> reads_done_{0};
  std::atomic<uint64_t> jobs_rejected_{0};
  std::atomic<size_t> write_queue_depth_{0};
  std::atomic<size_t> read_queue_depth_{0};
  std::array<std::atomic<uint64_t>, kBatchSizeBuckets.size() + 1> batch_size_buckets_{};
  std::atomic<uint64_t> batch_size_sum_{0};
  std::atomic<uint64_t> group_runs_{0};
  std::atomic<uint64_t> jobs_in_group_runs_{0};
  std::atomic<uint64_t> group_fallbacks_{0};
  std::atomic<uint64_t> checkpoints_{0};
  std::atomic<uint64_t> background_checkpoints_{0};
  /// WAL pages after the last commit; writer thread only.
  int wal_pages_ = 0;
  /// Set under checkpoint_mutex_ to kRunning (by the writer) and under writes_.mutex to kDone
  /// (by the checkpointer), so that each thread's wait sees the change meant for it.
  std::atomic<CheckpointRound> checkpoint_round_{CheckpointRound::kIdle};
  std::mutex checkpoint_mutex_;
  std::condition_variable checkpoint_wanted_;
  bool checkpointer_stopping_ = false;  // under checkpoint_mutex_
  /// Frames the last round had copied into the data file (written before kDone is).
  int checkpoint_backfilled_ = 0;
  /// Background rounds of the checkpoint under way; writer thread only.
  int checkpoint_rounds_ = 0;
};

}  // namespace hawker::storage
