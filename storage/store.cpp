#include "storage/store.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <system_error>

#include "core/log.h"

namespace hawker::storage {
namespace {

thread_local bool tls_storage_thread = false;

constexpr std::string_view kComponent = "storage";

double seconds_between(std::chrono::steady_clock::time_point from,
                       std::chrono::steady_clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

/// A PASSIVE checkpoint on `db`: copies the WAL frames no reader still needs into the data
/// file, and syncs the data file when that reaches the WAL's last frame. Times it into
/// `seconds` when it succeeds, warns unless it was only busy, and returns SQLite's code;
/// `copied` receives the frames now in the data file.
int passive_checkpoint(Database& db, Histogram* seconds, std::string_view what, int* copied) {
  auto start = std::chrono::steady_clock::now();
  int log_frames = 0;
  int rc = sqlite3_wal_checkpoint_v2(db.handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                     copied);
  if (rc == SQLITE_OK) {
    if (seconds != nullptr)
      seconds->observe(seconds_between(start, std::chrono::steady_clock::now()));
  } else if (rc != SQLITE_BUSY) {
    log::warn(kComponent, "{}: {}", what, sqlite_error(db.handle(), rc, "checkpoint").message);
  }
  return rc;
}

}  // namespace

Store::Store(Loop& loop, StoreOptions options) : loop_(loop), options_(std::move(options)) {
  options_.reader_threads = std::clamp(options_.reader_threads, 1, 8);
  options_.max_batch = std::max<size_t>(options_.max_batch, 1);
}

Store::~Store() { close(); }

bool Store::on_storage_thread() { return tls_storage_thread; }

Status Store::open() {
  if (state_ != State::kNew) {
    return Error{ErrorCode::kInvalidArgument, "open storage: already opened"};
  }
  std::filesystem::path file(options_.path);
  if (file.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    if (ec) {
      return Error{ErrorCode::kIo, fmt::format("open storage: create directory {}: {}",
                                               file.parent_path().string(), ec.message())};
    }
  }

  OpenOptions write_options;
  write_options.path = options_.path;
  write_options.synchronous = options_.synchronous;
  write_options.busy_timeout_ms = options_.busy_timeout_ms;
  auto writer = Database::open(write_options);
  if (!writer) return std::move(writer).error().with_context("open storage");
  HAWKER_TRY_STATUS(apply_migrations(*writer, options_.schema), "open storage");
  std::optional<Database> checkpoint_db;
  if (options_.checkpoint_pages > 0) {
    // Commits no longer copy the WAL back; a checkpointer thread does most of it on a
    // connection of its own, and the writer the rest, between batches (checkpoint_step).
    HAWKER_TRY_STATUS(writer->exec("PRAGMA wal_autocheckpoint=0"), "open storage");
    sqlite3_wal_hook(writer->handle(), &Store::on_wal_commit, this);
    auto opened = Database::open(write_options);
    if (!opened) return std::move(opened).error().with_context("open storage checkpointer");
    HAWKER_TRY_STATUS(opened->exec("PRAGMA wal_autocheckpoint=0"), "open storage checkpointer");
    checkpoint_db = std::move(*opened);
  }

  // Readers open after the writer so the file exists and is already in WAL mode.
  std::vector<Database> readers;
  for (int i = 0; i < options_.reader_threads; ++i) {
    OpenOptions read_options = write_options;
    read_options.read_only = true;
    auto reader = Database::open(read_options);
    if (!reader) return std::move(reader).error().with_context("open storage reader");
    readers.push_back(std::move(*reader));
  }

  mailbox_ = std::make_unique<Mailbox>(loop_);
  writes_.accepting = true;
  reads_.accepting = true;
  writer_ = std::thread(&Store::writer_main, this, std::move(*writer), std::move(checkpoint_db));
  for (auto& reader : readers) readers_.emplace_back(&Store::reader_main, this, std::move(reader));
  state_ = State::kOpen;
  log::info(kComponent, "opened {} (synchronous={}, readers={})", options_.path,
            to_string(options_.synchronous), options_.reader_threads);
  return ok_status();
}

void Store::close() {
  if (state_ != State::kOpen) {
    state_ = State::kClosed;
    return;
  }
  // From here on a refused job is answered at once: the Mailbox is about to stop delivering.
  state_ = State::kClosing;
  for (JobQueue* queue : {&writes_, &reads_}) {
    std::lock_guard lock(queue->mutex);
    queue->accepting = false;
    queue->ready.notify_all();
  }
  // The threads finish every job already queued before they exit: this is the flush.
  if (writer_.joinable()) writer_.join();
  for (auto& reader : readers_) reader.join();
  readers_.clear();
  drain(*finished_);
  mailbox_->close();
  state_ = State::kClosed;
  log::info(kComponent, "closed {} after {} commits of {} jobs", options_.path, commits_.load(),
            jobs_committed_.load());
}

void Store::write(std::function<Status(Database&)> work, std::function<void(Status)> done) {
  submit_write(std::make_unique<detail::BasicJob<Status>>(std::move(work), std::move(done), false));
}

void Store::read(std::function<Status(Database&)> work, std::function<void(Status)> done) {
  submit_read(std::make_unique<detail::BasicJob<Status>>(std::move(work), std::move(done), false));
}

Status Store::write_sync(std::function<Status(Database&)> work) {
  return run_sync<Status>(std::move(work), true);
}

Status Store::read_sync(std::function<Status(Database&)> work) {
  return run_sync<Status>(std::move(work), false);
}

void Store::submit_write(std::unique_ptr<detail::Job> job) {
  submit(writes_, options_.max_write_queue, write_queue_depth_, std::move(job));
}

void Store::submit_read(std::unique_ptr<detail::Job> job) {
  submit(reads_, options_.max_read_queue, read_queue_depth_, std::move(job));
}

void Store::submit(JobQueue& queue, size_t limit, std::atomic<size_t>& depth,
                   std::unique_ptr<detail::Job> job) {
  {
    std::unique_lock lock(queue.mutex);
    if (queue.accepting && queue.jobs.size() < limit) {
      queue.jobs.push_back(std::move(job));
      depth = queue.jobs.size();
      queue.ready.notify_one();
      return;
    }
  }
  ++jobs_rejected_;
  bool open = state_ == State::kOpen;
  if (open) {
    job->fail(Error{ErrorCode::kResourceExhausted,
                    fmt::format("storage queue is full ({} jobs waiting)", limit)});
    finish(std::move(job));
  } else {
    // Nothing would ever deliver through a closed Mailbox, so the caller hears now.
    job->fail(Error{ErrorCode::kUnavailable, "storage is not open"});
    job->deliver();
  }
}

void Store::finish(std::unique_ptr<detail::Job> job) {
  if (job->deliver_inline()) {
    job->deliver();
    return;
  }
  bool was_empty;
  {
    std::lock_guard lock(finished_->mutex);
    was_empty = finished_->jobs.empty();
    finished_->jobs.push_back(std::move(job));
  }
  // A non-empty list already has a drain on its way, which will take this job too.
  if (was_empty) {
    mailbox_->post([finished = finished_] { drain(*finished); });
  }
}

void Store::drain(Finished& finished) {
  std::vector<std::unique_ptr<detail::Job>> jobs;
  {
    std::lock_guard lock(finished.mutex);
    jobs.swap(finished.jobs);
  }
  for (auto& job : jobs) job->deliver();
}

void Store::writer_main(Database db, std::optional<Database> checkpoint_db) {
  tls_storage_thread = true;
  set_thread_name("storage-write");
  std::thread checkpointer;
  if (checkpoint_db) {
    checkpointer = std::thread(&Store::checkpointer_main, this, std::move(*checkpoint_db));
  }
  std::vector<std::unique_ptr<detail::Job>> batch;
  while (true) {
    batch.clear();
    {
      std::unique_lock lock(writes_.mutex);
      // A checkpointer round that ends while no job waits is finished at once, so an idle
      // shop's WAL starts over too.
      writes_.ready.wait(lock, [&] {
        return !writes_.jobs.empty() || !writes_.accepting ||
               checkpoint_round_ == CheckpointRound::kDone;
      });
      if (writes_.jobs.empty() && !writes_.accepting) break;
      // Everything that queued up while the last COMMIT was syncing goes into this batch.
      size_t take = std::min(writes_.jobs.size(), options_.max_batch);
      for (size_t i = 0; i < take; ++i) {
        batch.push_back(std::move(writes_.jobs.front()));
        writes_.jobs.pop_front();
      }
      write_queue_depth_ = writes_.jobs.size();
    }
    if (!batch.empty()) {
      auto batch_start = std::chrono::steady_clock::now();
      commit_batch(db, batch);
      if (options_.batch_seconds != nullptr) {
        options_.batch_seconds->observe(
            seconds_between(batch_start, std::chrono::steady_clock::now()));
      }
    }
    if (checkpointer.joinable()) checkpoint_step(db);
  }
  if (checkpointer.joinable()) {
    {
      std::lock_guard lock(checkpoint_mutex_);
      checkpointer_stopping_ = true;
    }
    checkpoint_wanted_.notify_one();
    checkpointer.join();
  }
  // Folds the WAL back into the main file so a copy of the data file alone is complete. A
  // reader in another process can hold it back; that only leaves the WAL in place.
  auto checkpoint = db.pragma("wal_checkpoint(TRUNCATE)");
  if (!checkpoint) log::warn(kComponent, "checkpoint at close: {}", checkpoint.error().message);
}

void Store::checkpoint_step(Database& db) {
  CheckpointRound round = checkpoint_round_;
  if (round == CheckpointRound::kIdle) {
    if (wal_pages_ >= options_.checkpoint_pages) {
      checkpoint_rounds_ = 1;
      start_checkpoint_round();
    }
    return;
  }
  if (round == CheckpointRound::kRunning) return;
  // The round copied what the WAL held when it began, while batches went on appending. Most
  // of a WAL again (a round slower than the commits) is left to another round; a rest is
  // copied here. Only the writer can finish: the WAL starts over at the next transaction only
  // when every frame is in the data file, and only between the writer's batches does nothing
  // append. The batch's answers are already on their way; the jobs queued meanwhile wait.
  int left = wal_pages_ - checkpoint_backfilled_;
  if (left > options_.checkpoint_pages / 2 && checkpoint_rounds_ < 3) {
    ++checkpoint_rounds_;
    start_checkpoint_round();
    return;
  }
  int copied = 0;
  if (passive_checkpoint(db, options_.checkpoint_seconds, "checkpoint", &copied) == SQLITE_OK) {
    ++checkpoints_;
  }
  wal_pages_ = 0;
  checkpoint_round_ = CheckpointRound::kIdle;
}

void Store::start_checkpoint_round() {
  {
    std::lock_guard lock(checkpoint_mutex_);
    checkpoint_round_ = CheckpointRound::kRunning;
  }
  checkpoint_wanted_.notify_one();
}

void Store::checkpointer_main(Database db) {
  set_thread_name("storage-ckpt");
  while (true) {
    {
      std::unique_lock lock(checkpoint_mutex_);
      checkpoint_wanted_.wait(lock, [&] {
        return checkpointer_stopping_ || checkpoint_round_ == CheckpointRound::kRunning;
      });
      if (checkpointer_stopping_) return;
    }
    // PASSIVE copies the frames no reader still needs into the data file while the writer
    // appends more: neither waits for the other. It seldom reaches the WAL's last frame, so the
    // data file's sync is left to the writer's finishing checkpoint (tried here as well: no
    // shorter a hold of the writer, docs/benchmarks.md).
    int copied = 0;
    int rc = passive_checkpoint(db, options_.background_checkpoint_seconds, "background checkpoint",
                                &copied);
    if (rc == SQLITE_OK) ++background_checkpoints_;
    checkpoint_backfilled_ = rc == SQLITE_OK ? std::max(copied, 0) : 0;
    {
      std::lock_guard lock(writes_.mutex);
      checkpoint_round_ = CheckpointRound::kDone;
    }
    writes_.ready.notify_one();
  }
}

void Store::commit_batch(Database& db, std::vector<std::unique_ptr<detail::Job>>& batch) {
  // Jobs whose work succeeded inside the open transaction; they share its fate.
  std::vector<detail::Job*> pending;
  // The rerunnable jobs run since the shared savepoint "run" was opened and that succeeded.
  std::vector<detail::Job*> run;
  bool run_open = false;
  size_t in_transaction = 0;
  Status begin = db.exec_cached("BEGIN IMMEDIATE");

  auto abandon = [&](const Error& why) {
    for (detail::Job* job : pending) job->fail(why);
    jobs_failed_ += pending.size();
    pending.clear();
    run.clear();
    run_open = false;
    in_transaction = 0;
    if (!db.autocommit()) (void)db.exec("ROLLBACK");
    db.reset_all_statements();
  };
  // Abandons the transaction and opens a new one for the jobs still to come in this batch.
  auto start_over = [&](const Error& why) {
    abandon(why);
    begin = db.exec_cached("BEGIN IMMEDIATE");
  };
  // SQLite rolls a whole transaction back on some errors (disk full, I/O), and a job that ran
  // COMMIT or ROLLBACK itself ended it too: the earlier jobs' work did not survive. `jobs`
  // ran in it and fail with the rest; a single job that failed keeps its own error.
  auto transaction_lost = [&](std::span<detail::Job* const> jobs, const Status& outcome) {
    Error why{ErrorCode::kInternal, "the batch transaction ended inside a job"};
    if (!outcome) why = outcome.error().with_context("the batch transaction was rolled back");
    bool own_error = !outcome && jobs.size() == 1;
    if (!own_error) {
      for (detail::Job* job : jobs) job->fail(why);
    }
    jobs_failed_ += jobs.size();
    start_over(why);
  };
  // A later failure of a job that is not rerunnable must not undo the rerunnable jobs before
  // it, nor a later rerun undo it: the shared savepoint closes first.
  auto close_run = [&]() -> Status {
    if (!run_open) return ok_status();
    run.clear();
    run_open = false;
    return db.exec_cached("RELEASE run");
  };

  auto run_single = [&](detail::Job& job) {
    if (!begin) {
      job.fail(begin.error().with_context("begin write transaction"));
      ++jobs_failed_;
      return;
    }
    ++in_transaction;
    bool rerunnable = job.rerunnable();
    if (!rerunnable) {
      Status release = close_run();
      if (!release) {
        job.fail(release.error());
        ++jobs_failed_;
        start_over(std::move(release).error().with_context("release savepoint"));
        return;
      }
    }
    if (!rerunnable || !run_open) {
      Status savepoint = db.exec_cached(rerunnable ? "SAVEPOINT run" : "SAVEPOINT job");
      if (!savepoint) {
        job.fail(std::move(savepoint).error());
        ++jobs_failed_;
        return;
      }
      run_open = rerunnable;
    }
    int64_t changes_before = db.total_changes();
    Status outcome = job.run(db);
    db.reset_all_statements();
    if (db.autocommit()) {
      detail::Job* lost = &job;
      transaction_lost(std::span(&lost, 1), outcome);
      return;
    }
    if (rerunnable) {
      if (outcome) {
        pending.push_back(&job);
        run.push_back(&job);
        return;
      }
      ++jobs_failed_;
      // The usual refusal wrote nothing, and there is nothing to undo.
      if (db.total_changes() == changes_before) return;
      Status redone = rerun(db, run, pending);
      if (!redone) start_over(std::move(redone).error().with_context("roll back failed job"));
      return;
    }
    if (outcome) {
      Status release = db.exec_cached("RELEASE job");
      if (release) {
        pending.push_back(&job);
        return;
      }
      job.fail(release.error());
      ++jobs_failed_;
      start_over(std::move(release).error().with_context("release savepoint"));
      return;
    }
    ++jobs_failed_;
    Status undo = db.exec_cached("ROLLBACK TO job");
    if (undo) undo = db.exec_cached("RELEASE job");
    if (!undo) start_over(std::move(undo).error().with_context("roll back failed job"));
  };

  // Jobs of one group queued back to back run together in one savepoint of their own; when
  // that fails, it is rolled back and each of them runs alone, so the outcome is the same.
  auto run_group = [&](detail::GroupRunner& group, std::span<detail::Job* const> jobs) {
    auto fail_all = [&](const Error& why) {
      for (detail::Job* job : jobs) job->fail(why);
      jobs_failed_ += jobs.size();
    };
    if (!begin) {
      for (detail::Job* job : jobs) run_single(*job);
      return;
    }
    Status opened = close_run();
    if (!opened) {
      fail_all(opened.error());
      start_over(std::move(opened).error().with_context("release savepoint"));
      return;
    }
    opened = db.exec_cached("SAVEPOINT job");
    if (!opened) {
      fail_all(std::move(opened).error());
      return;
    }
    Status outcome = group.run_jobs(db, jobs);
    db.reset_all_statements();
    if (db.autocommit()) {
      in_transaction += jobs.size();
      transaction_lost(jobs, outcome);
      return;
    }
    if (outcome) {
      Status release = db.exec_cached("RELEASE job");
      if (!release) {
        fail_all(release.error());
        start_over(std::move(release).error().with_context("release savepoint"));
        return;
      }
      in_transaction += jobs.size();
      pending.insert(pending.end(), jobs.begin(), jobs.end());
      ++group_runs_;
      jobs_in_group_runs_ += jobs.size();
      return;
    }
    Status undo = db.exec_cached("ROLLBACK TO job");
    if (undo) undo = db.exec_cached("RELEASE job");
    if (!undo) {
      fail_all(undo.error());
      start_over(std::move(undo).error().with_context("roll back job group"));
      return;
    }
    ++group_fallbacks_;
    log::warn(kComponent, "a run of {} grouped jobs failed, running each alone: {}", jobs.size(),
              outcome.error().message);
    for (detail::Job* job : jobs) run_single(*job);
  };

  std::vector<detail::Job*> group_jobs;
  for (size_t i = 0; i < batch.size();) {
    detail::GroupRunner* group = batch[i]->group();
    size_t end = i + 1;
    if (group != nullptr) {
      while (end < batch.size() && batch[end]->group() == group) ++end;
    }
    if (end - i < 2) {
      run_single(*batch[i]);
    } else {
      group_jobs.clear();
      for (size_t k = i; k < end; ++k) group_jobs.push_back(batch[k].get());
      run_group(*group, group_jobs);
    }
    i = end;
  }

  if (begin && !db.autocommit()) {
    // COMMIT also releases an open "run" savepoint.
    Status commit = db.exec_cached("COMMIT");
    if (commit) {
      ++commits_;
      jobs_committed_ += pending.size();
      record_batch(in_transaction);
    } else {
      ++commit_failures_;
      log::error(kComponent, "commit of {} jobs failed: {}", pending.size(),
                 commit.error().message);
      abandon(std::move(commit).error().with_context("commit"));
    }
  }
  // Only now, with COMMIT returned, does any caller hear back.
  for (auto& job : batch) finish(std::move(job));
}

Status Store::rerun(Database& db, std::vector<detail::Job*>& run,
                    std::vector<detail::Job*>& pending) {
  // The run's jobs are the last ones in `pending`: nothing else ran since its savepoint.
  size_t kept = pending.size() - run.size();
  // On failure every job of the run goes back into `pending`, so that abandoning the
  // transaction fails them all and none delivers a result that was rolled back.
  auto give_up = [&](Error why) -> Status {
    pending.resize(kept);
    pending.insert(pending.end(), run.begin(), run.end());
    return why;
  };
  while (true) {
    Status undo = db.exec_cached("ROLLBACK TO run");
    if (!undo) return give_up(std::move(undo).error());
    pending.resize(kept);
    bool again = false;
    size_t i = 0;
    while (i < run.size()) {
      detail::Job* job = run[i];
      int64_t changes_before = db.total_changes();
      Status outcome = job->run(db);
      db.reset_all_statements();
      if (db.autocommit()) {
        return give_up(outcome ? Error{ErrorCode::kInternal, "the batch transaction ended"}
                               : outcome.error());
      }
      if (outcome) {
        pending.push_back(job);
        ++i;
        continue;
      }
      ++jobs_failed_;
      bool wrote = db.total_changes() != changes_before;
      run.erase(run.begin() + static_cast<std::ptrdiff_t>(i));
      if (wrote) {
        again = true;
        break;
      }
    }
    if (!again) return ok_status();
  }
}

void Store::record_batch(size_t size) {
  batch_size_sum_ += size;
  auto bound = std::lower_bound(kBatchSizeBuckets.begin(), kBatchSizeBuckets.end(), size);
  ++batch_size_buckets_[static_cast<size_t>(bound - kBatchSizeBuckets.begin())];
}

int Store::on_wal_commit(void* store, sqlite3*, const char*, int pages) {
  static_cast<Store*>(store)->wal_pages_ = pages;
  return SQLITE_OK;
}

void Store::reader_main(Database db) {
  tls_storage_thread = true;
  set_thread_name("storage-read");
  while (true) {
    std::unique_ptr<detail::Job> job;
    {
      std::unique_lock lock(reads_.mutex);
      reads_.ready.wait(lock, [&] { return !reads_.jobs.empty() || !reads_.accepting; });
      if (reads_.jobs.empty()) break;
      job = std::move(reads_.jobs.front());
      reads_.jobs.pop_front();
      read_queue_depth_ = reads_.jobs.size();
    }
    // One read transaction: every statement of the job sees the same committed snapshot.
    Status begin = db.exec("BEGIN");
    if (!begin) {
      job->fail(std::move(begin).error().with_context("begin read transaction"));
    } else {
      (void)job->run(db);
      db.reset_all_statements();
      if (!db.autocommit()) (void)db.exec_cached("COMMIT");
    }
    ++reads_done_;
    finish(std::move(job));
  }
}

StoreCounters Store::counters() const {
  StoreCounters c;
  c.commits = commits_;
  c.jobs_committed = jobs_committed_;
  c.jobs_failed = jobs_failed_;
  c.commit_failures = commit_failures_;
  c.reads = reads_done_;
  c.jobs_rejected = jobs_rejected_;
  c.write_queue_depth = write_queue_depth_;
  c.read_queue_depth = read_queue_depth_;
  for (size_t i = 0; i < c.batch_size_buckets.size(); ++i)
    c.batch_size_buckets[i] = batch_size_buckets_[i];
  c.batch_size_sum = batch_size_sum_;
  c.group_runs = group_runs_;
  c.jobs_in_group_runs = jobs_in_group_runs_;
  c.group_fallbacks = group_fallbacks_;
  c.checkpoints = checkpoints_;
  c.background_checkpoints = background_checkpoints_;
  return c;
}

}  // namespace hawker::storage
