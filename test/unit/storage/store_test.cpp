#include "storage/store.h"

#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/loop.h"
#include "test/unit/storage/temp_dir.h"

using namespace hawker;
using namespace hawker::storage;
using hawker::storage::test::TempDir;

namespace {

constexpr std::array kTestTables = {
    Migration{100, "items", "CREATE TABLE items (id INTEGER PRIMARY KEY, n INTEGER UNIQUE);"},
    Migration{101, "children",
              "CREATE TABLE parents (id INTEGER PRIMARY KEY);"
              "CREATE TABLE children (parent_id INTEGER REFERENCES parents(id) "
              "DEFERRABLE INITIALLY DEFERRED);"},
};

StoreOptions options_for(const TempDir& dir) {
  StoreOptions options;
  options.path = dir.file("data/hawker.db");
  options.schema.add(kTestTables);
  return options;
}

Result<int64_t> insert_item(Database& db, int64_t n) {
  auto stmt = db.cached("INSERT INTO items (n) VALUES (?) RETURNING id");
  if (!stmt) return std::move(stmt).error();
  (*stmt)->bind_int64(1, n);
  auto step = (*stmt)->step();
  if (!step) return std::move(step).error();
  if (*step != Statement::Step::kRow) return Error{ErrorCode::kInternal, "no id returned"};
  return (*stmt)->column_int64(0);
}

/// Inserts `count` rows numbered from `first` in the caller's transaction.
Status insert_items(Database& db, int64_t first, int count) {
  auto stmt = db.cached("INSERT INTO items (n) VALUES (?)");
  if (!stmt) return std::move(stmt).error();
  for (int k = 0; k < count; ++k) {
    (*stmt)->bind_int64(1, first + k);
    HAWKER_TRY_STATUS((*stmt)->run(), "insert");
    (*stmt)->reset();
  }
  return ok_status();
}

int64_t count_items(const std::string& path) {
  OpenOptions options;
  options.path = path;
  auto db = Database::open(options);
  REQUIRE(db.has_value());
  auto stmt = db->prepare("SELECT count(*) FROM items");
  REQUIRE(stmt.has_value());
  REQUIRE(*stmt->step() == Statement::Step::kRow);
  return stmt->column_int64(0);
}

/// Holds the writer inside a job until released, so the jobs queued meanwhile form one batch.
class WriterGate {
 public:
  explicit WriterGate(Store& store) {
    // The job keeps its own handles: the gate may be gone before the writer leaves wait().
    auto started = std::make_shared<std::promise<void>>();
    auto started_future = started->get_future();
    store.write(
        [started, release = release_.get_future().share()](Database&) -> Status {
          started->set_value();
          release.wait();
          return ok_status();
        },
        [](Status) {});
    started_future.wait();
  }
  void open() { release_.set_value(); }

 private:
  std::promise<void> release_;
};

}  // namespace

TEST_CASE("1000 writes posted at once commit in a few transactions, answered on the loop") {
  TempDir dir;
  Loop loop;
  {
    StoreOptions options = options_for(dir);
    Store store(loop, options);
    REQUIRE(store.open().ok());
    Timer watchdog(loop);
    watchdog.start(20000, 0, [&] { loop.stop(); });

    int answered = 0;
    int failed = 0;
    bool all_on_loop = true;
    for (int i = 0; i < 1000; ++i) {
      store.write<int64_t>([i](Database& db) { return insert_item(db, i); },
                           [&](Result<int64_t> id) {
                             all_on_loop = all_on_loop && loop.on_loop_thread();
                             if (!id) ++failed;
                             if (++answered == 1000) {
                               watchdog.stop();
                               store.close();
                             }
                           });
    }
    loop.run();
    CHECK(answered == 1000);
    CHECK(failed == 0);
    CHECK(all_on_loop);
    StoreCounters c = store.counters();
    CHECK(c.jobs_committed == 1000);
    // Group commit: far fewer transactions than writes.
    CHECK(c.commits >= 1);
    CHECK(c.commits < 100);
    CHECK(c.batch_size_sum == 1000);
    uint64_t batches = 0;
    for (uint64_t b : c.batch_size_buckets) batches += b;
    CHECK(batches == c.commits);
    CHECK(c.write_queue_depth == 0);
    CHECK(count_items(options.path) == 1000);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("a failing job rolls back alone; the rest of its batch commits") {
  TempDir dir;
  Loop loop;
  {
    StoreOptions options = options_for(dir);
    Store store(loop, options);
    REQUIRE(store.open().ok());
    std::vector<Result<int64_t>> results;
    {
      WriterGate gate(store);
      for (int i = 0; i < 10; ++i) {
        store.write<int64_t>(
            [i](Database& db) -> Result<int64_t> {
              auto id = insert_item(db, i);
              // Job 4 writes, then fails: its row must vanish with it.
              if (i == 4) return Error{ErrorCode::kConflict, "job 4 changed its mind"};
              // Job 7 collides with job 2's unique value.
              if (i == 7) return insert_item(db, 2);
              return id;
            },
            [&](Result<int64_t> r) {
              results.push_back(std::move(r));
              if (results.size() == 10) store.close();
            });
      }
      gate.open();
    }
    loop.run();
    REQUIRE(results.size() == 10);
    for (int i = 0; i < 10; ++i) {
      if (i == 4) {
        REQUIRE_FALSE(results[i].has_value());
        CHECK(results[i].error().message == "job 4 changed its mind");
      } else if (i == 7) {
        REQUIRE_FALSE(results[i].has_value());
        CHECK(results[i].error().code == ErrorCode::kAlreadyExists);
      } else {
        CHECK(results[i].has_value());
      }
    }
    StoreCounters c = store.counters();
    CHECK(c.commits == 2);  // the gate's batch, then all ten together
    CHECK(c.jobs_failed == 2);
    CHECK(c.jobs_committed == 9);  // the gate and eight items
    CHECK(count_items(options.path) == 8);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("rerunnable jobs share a savepoint and still fail alone, with savepoint jobs between") {
  TempDir dir;
  Loop loop;
  {
    StoreOptions options = options_for(dir);
    Store store(loop, options);
    REQUIRE(store.open().ok());
    constexpr int kJobs = 12;
    std::vector<Result<int64_t>> results(kJobs, Error{ErrorCode::kInternal, "never answered"});
    std::vector<int> runs(kJobs, 0);
    int answered = 0;
    {
      WriterGate gate(store);
      for (int i = 0; i < kJobs; ++i) {
        // Jobs 0-5 and 7-11 are rerunnable; job 6 runs in its own savepoint between them.
        WriteMode mode = i == 6 ? WriteMode::kSavepoint : WriteMode::kRerunnable;
        store.write<int64_t>(
            [i, &runs](Database& db) -> Result<int64_t> {
              ++runs[i];
              // Job 1 refuses before writing: nothing to undo, nobody runs again.
              if (i == 1) return Error{ErrorCode::kConflict, "refused before writing"};
              auto id = insert_item(db, i);
              // Job 4 and job 9 fail after writing: their shared savepoint is rolled back
              // and the jobs of it that had succeeded run again.
              if (i == 4 || i == 9) return Error{ErrorCode::kConflict, "failed after writing"};
              // Job 10 collides with job 7's unique value, a failure of SQLite itself.
              if (i == 10) return insert_item(db, 7);
              return id;
            },
            [&, i](Result<int64_t> r) {
              results[i] = std::move(r);
              if (++answered == kJobs) store.close();
            },
            mode);
      }
      gate.open();
    }
    loop.run();
    REQUIRE(answered == kJobs);
    for (int i = 0; i < kJobs; ++i) {
      CAPTURE(i);
      if (i == 1 || i == 4 || i == 9 || i == 10) {
        CHECK_FALSE(results[i].has_value());
      } else {
        CHECK(results[i].has_value());
      }
    }
    CHECK(results[10].error().code == ErrorCode::kAlreadyExists);
    // Jobs 0, 2 and 3 ran again after job 4; jobs 7 and 8 after job 9 and again after job 10;
    // job 6 never (its savepoint closed the first shared one), nor job 11.
    CHECK(runs == std::vector<int>{2, 1, 2, 2, 1, 1, 1, 3, 3, 1, 1, 1});
    StoreCounters c = store.counters();
    CHECK(c.commits == 2);  // the gate's batch, then all twelve together
    CHECK(c.jobs_failed == 4);
    CHECK(c.jobs_committed == 9);  // the gate and eight items
    CHECK(count_items(options.path) == 8);
    auto db = Database::open(OpenOptions{.path = options.path});
    REQUIRE(db.has_value());
    auto stmt = db->prepare("SELECT group_concat(n) FROM (SELECT n FROM items ORDER BY n)");
    REQUIRE(*stmt->step() == Statement::Step::kRow);
    CHECK(stmt->column_text(0) == "0,2,3,5,6,7,8,11");
  }
  CHECK(loop.close() == 0);
}

/// Items written one by one (run_one) or many to a statement (run_many). Negative inputs are
/// refused before writing; 13 fails after writing; run_many fails after writing its rows when
/// one of its inputs is 99, and refuses duplicates within a run.
class ItemGroup final : public JobGroup<int64_t, int64_t> {
 public:
  Result<int64_t> run_one(Database& db, const int64_t& n) override {
    ++ones;
    if (n < 0) return Error{ErrorCode::kConflict, "refused before writing"};
    auto id = insert_item(db, n);
    if (n == 13) return Error{ErrorCode::kConflict, "failed after writing"};
    return id;
  }

  Status run_many(Database& db, std::span<const int64_t* const> inputs,
                  std::vector<int64_t>& out) override {
    runs.emplace_back();
    for (const int64_t* n : inputs) runs.back().push_back(*n);
    std::string sql = "INSERT INTO items (n) VALUES ";
    for (size_t i = 0; i < inputs.size(); ++i) sql += i == 0 ? "(?)" : ",(?)";
    auto stmt = db.prepare(sql);
    if (!stmt) return std::move(stmt).error();
    for (size_t i = 0; i < inputs.size(); ++i)
      stmt->bind_int64(static_cast<int>(i + 1), *inputs[i]);
    Status inserted = stmt->run();
    if (!inserted) return inserted;
    for (const int64_t* n : inputs) {
      if (*n < 0 || *n == 13 || *n == 99) return Error{ErrorCode::kConflict, "not for a group"};
    }
    int64_t last = db.last_insert_rowid();
    for (size_t i = 0; i < inputs.size(); ++i) {
      out.push_back(last - static_cast<int64_t>(inputs.size() - 1 - i));
    }
    return ok_status();
  }

  int ones = 0;
  std::vector<std::vector<int64_t>> runs;
};

TEST_CASE("grouped jobs queued together run as one; alone or after a failed run, one by one") {
  TempDir dir;
  Loop loop;
  {
    StoreOptions options = options_for(dir);
    Store store(loop, options);
    REQUIRE(store.open().ok());
    auto items = std::make_shared<ItemGroup>();
    auto others = std::make_shared<ItemGroup>();
    // In queue order: a run of three, a plain job, a run of two with a refusal in it (its run
    // fails and each of its jobs runs alone), another group's pair, a lone grouped job, and a
    // run whose run_many fails after writing (99) and whose job 13 then fails alone.
    struct Queued {
      ItemGroup* group;  // null: a plain write
      int64_t n;
    };
    const std::vector<Queued> queue = {
        {items.get(), 1},  {items.get(), 2},  {items.get(), 3},  {nullptr, 4},
        {items.get(), 5},  {items.get(), -6}, {others.get(), 7}, {others.get(), 8},
        {items.get(), 9},  {nullptr, 10},     {items.get(), 11}, {items.get(), 99},
        {items.get(), 13}, {items.get(), 14},
    };
    std::vector<std::optional<Result<int64_t>>> results(queue.size());
    size_t answered = 0;
    {
      WriterGate gate(store);
      for (size_t i = 0; i < queue.size(); ++i) {
        auto done = [&, i](Result<int64_t> r) {
          results[i] = std::move(r);
          if (++answered == queue.size()) store.close();
        };
        int64_t n = queue[i].n;
        if (queue[i].group == nullptr) {
          store.write<int64_t>([n](Database& db) { return insert_item(db, n); }, done);
        } else {
          store.write<int64_t, int64_t>(queue[i].group == items.get() ? items : others, n, done);
        }
      }
      gate.open();
    }
    loop.run();
    REQUIRE(answered == queue.size());
    CHECK(items->runs == std::vector<std::vector<int64_t>>{{1, 2, 3}, {5, -6}, {11, 99, 13, 14}});
    CHECK(others->runs == std::vector<std::vector<int64_t>>{{7, 8}});
    // 5 and -6 after their failed run, 9 alone, then 11, 99, 13 and 14 after theirs, as
    // rerunnable jobs: 13 fails after writing, so 11 and 99, which share its savepoint, run
    // once more.
    CHECK(items->ones == 9);
    CHECK(others->ones == 0);
    auto db = Database::open(OpenOptions{.path = options.path});
    REQUIRE(db.has_value());
    for (size_t i = 0; i < queue.size(); ++i) {
      CAPTURE(queue[i].n);
      REQUIRE(results[i].has_value());
      if (queue[i].n == -6 || queue[i].n == 13) {
        CHECK_FALSE(results[i]->has_value());
        continue;
      }
      REQUIRE(results[i]->has_value());
      // Each job's answer is the id of its own row.
      auto stmt = db->prepare("SELECT n FROM items WHERE id = ?");
      stmt->bind_int64(1, **results[i]);
      REQUIRE(*stmt->step() == Statement::Step::kRow);
      CHECK(stmt->column_int64(0) == queue[i].n);
    }
    auto all = db->prepare("SELECT group_concat(n) FROM (SELECT n FROM items ORDER BY id)");
    REQUIRE(*all->step() == Statement::Step::kRow);
    CHECK(all->column_text(0) == "1,2,3,4,5,7,8,9,10,11,99,14");
    StoreCounters c = store.counters();
    CHECK(c.commits == 2);     // the gate's batch, then the fourteen jobs together
    CHECK(c.group_runs == 2);  // {1, 2, 3} and {7, 8}; the other two failed
    CHECK(c.jobs_in_group_runs == 5);
    CHECK(c.group_fallbacks == 2);
    CHECK(c.jobs_failed == 2);
    CHECK(c.jobs_committed == 13);  // the gate and twelve items
    CHECK(c.batch_size_sum == 15);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("a failed COMMIT fails every job of its batch and the store goes on") {
  TempDir dir;
  Loop loop;
  {
    StoreOptions options = options_for(dir);
    Store store(loop, options);
    REQUIRE(store.open().ok());
    std::vector<Status> results;
    {
      WriterGate gate(store);
      for (int i = 0; i < 4; ++i) {
        store.write(
            [i](Database& db) -> Status {
              if (i == 2) {
                // A deferred foreign key is only checked at COMMIT: this job "succeeds" and then
                // sinks the whole transaction.
                return db.exec("INSERT INTO children VALUES (404)");
              }
              auto id = insert_item(db, i);
              if (!id) return std::move(id).error();
              return ok_status();
            },
            [&](Status s) {
              results.push_back(std::move(s));
              if (results.size() == 4) loop.stop();
            });
      }
      gate.open();
    }
    loop.run();
    // Queued only after the failed batch answered, so it lands in a fresh transaction.
    auto after = store.write_sync<int64_t>([](Database& db) { return insert_item(db, 100); });
    CHECK(after.has_value());
    store.close();
    REQUIRE(results.size() == 4);
    for (const Status& s : results) {
      REQUIRE_FALSE(s.ok());
      CHECK(s.error().code == ErrorCode::kConflict);
      CHECK(s.error().message.find("commit") != std::string::npos);
    }
    CHECK(store.counters().commit_failures == 1);
    CHECK(count_items(options.path) == 1);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("reads run while a write transaction is open and see the last commit") {
  TempDir dir;
  Loop loop;
  {
    StoreOptions options = options_for(dir);
    Store store(loop, options);
    REQUIRE(store.open().ok());
    REQUIRE(store.write_sync<int64_t>([](Database& db) { return insert_item(db, 1); }).has_value());

    std::promise<void> write_started;
    std::promise<void> read_finished;
    auto read_finished_future = read_finished.get_future();
    Status write_result = Error{ErrorCode::kInternal, "never answered"};
    Result<int64_t> read_result = Error{ErrorCode::kInternal, "never answered"};
    int answers = 0;
    auto answered = [&] {
      if (++answers == 2) store.close();
    };

    store.write(
        [&](Database& db) -> Status {
          HAWKER_TRY_STATUS(db.exec("UPDATE items SET n = 2"), "update");
          write_started.set_value();
          // Holds the write transaction open until the read is done: if readers waited for
          // the writer, this would time out.
          if (read_finished_future.wait_for(std::chrono::seconds(10)) !=
              std::future_status::ready) {
            return Error{ErrorCode::kUnavailable, "the read never ran during the write"};
          }
          return ok_status();
        },
        [&](Status s) {
          write_result = std::move(s);
          answered();
        });
    write_started.get_future().wait();
    store.read<int64_t>(
        [&](Database& db) -> Result<int64_t> {
          auto stmt = db.cached("SELECT n FROM items");
          if (!stmt) return std::move(stmt).error();
          auto step = (*stmt)->step();
          if (!step) return std::move(step).error();
          int64_t n = (*stmt)->column_int64(0);
          read_finished.set_value();
          return n;
        },
        [&](Result<int64_t> r) {
          CHECK(loop.on_loop_thread());
          read_result = std::move(r);
          answered();
        });
    loop.run();
    CHECK(write_result.ok());
    REQUIRE(read_result.has_value());
    CHECK(*read_result == 1);  // the uncommitted update was invisible
    CHECK(store.counters().reads == 1);
    auto now = Database::open(OpenOptions{.path = options.path});
    REQUIRE(now.has_value());
    auto n = now->prepare("SELECT n FROM items");
    REQUIRE(*n->step() == Statement::Step::kRow);
    CHECK(n->column_int64(0) == 2);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("close() commits every queued write before returning") {
  TempDir dir;
  Loop loop;
  std::string path;
  int answered = 0;
  int ok = 0;
  {
    StoreOptions options = options_for(dir);
    path = options.path;
    Store store(loop, options);
    REQUIRE(store.open().ok());
    for (int i = 0; i < 200; ++i) {
      store.write<int64_t>([i](Database& db) { return insert_item(db, i); },
                           [&](Result<int64_t> r) {
                             CHECK(loop.on_loop_thread());
                             ++answered;
                             if (r) ++ok;
                           });
    }
    store.close();
    CHECK(answered == 200);
    CHECK(ok == 200);

    // After close the store refuses at once.
    Status refused = ok_status();
    store.write([](Database&) { return ok_status(); }, [&](Status s) { refused = std::move(s); });
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == ErrorCode::kUnavailable);
  }
  CHECK(loop.close() == 0);

  // A new store on the same file sees every write, and its migrations are already applied.
  Loop again;
  {
    Store store(again, options_for(dir));
    REQUIRE(store.open().ok());
    auto count = store.read_sync<int64_t>([](Database& db) -> Result<int64_t> {
      auto stmt = db.cached("SELECT count(*) FROM items");
      if (!stmt) return std::move(stmt).error();
      auto step = (*stmt)->step();
      if (!step) return std::move(step).error();
      return (*stmt)->column_int64(0);
    });
    REQUIRE(count.has_value());
    CHECK(*count == 200);
    store.close();
  }
  CHECK(again.close() == 0);
}

TEST_CASE("a full write queue refuses at once with resource-exhausted") {
  TempDir dir;
  Loop loop;
  {
    StoreOptions options = options_for(dir);
    options.max_write_queue = 4;
    Store store(loop, options);
    REQUIRE(store.open().ok());
    std::vector<Result<int64_t>> results;
    {
      WriterGate gate(store);
      for (int i = 0; i < 5; ++i) {
        store.write<int64_t>([i](Database& db) { return insert_item(db, i); },
                             [&](Result<int64_t> r) {
                               results.push_back(std::move(r));
                               if (results.size() == 5) store.close();
                             });
      }
      CHECK(store.counters().write_queue_depth == 4);
      gate.open();
    }
    loop.run();
    REQUIRE(results.size() == 5);
    // The refusal does not wait for the writer, so it is answered first.
    REQUIRE_FALSE(results[0].has_value());
    CHECK(results[0].error().code == ErrorCode::kResourceExhausted);
    for (size_t i = 1; i < results.size(); ++i) CHECK(results[i].has_value());
    CHECK(store.counters().jobs_rejected == 1);
    CHECK(count_items(options.path) == 4);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("blocking helpers work before the loop runs and refuse to wait on themselves") {
  TempDir dir;
  Loop loop;
  {
    Store store(loop, options_for(dir));
    REQUIRE(store.open().ok());
    auto id = store.write_sync<int64_t>([](Database& db) { return insert_item(db, 9); });
    REQUIRE(id.has_value());
    CHECK(*id == 1);

    auto instance = store.read_sync<std::string>([](Database& db) -> Result<std::string> {
      auto stmt = db.cached("SELECT value FROM meta WHERE key = 'instance_id'");
      if (!stmt) return std::move(stmt).error();
      auto step = (*stmt)->step();
      if (!step) return std::move(step).error();
      return std::string((*stmt)->column_text(0));
    });
    REQUIRE(instance.has_value());
    CHECK(instance->size() == 32);

    Status nested = store.write_sync([&store](Database&) -> Status {
      return store.write_sync([](Database&) { return ok_status(); });
    });
    REQUIRE_FALSE(nested.ok());
    CHECK(nested.error().message.find("wait for itself") != std::string::npos);

    Status readonly = store.read_sync([](Database& db) { return db.exec("DELETE FROM items"); });
    CHECK_FALSE(readonly.ok());
    store.close();
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("open refuses a database written by a newer hawker") {
  TempDir dir;
  StoreOptions options = options_for(dir);
  {
    Loop loop;
    constexpr std::array kFuture = {Migration{150, "future", "CREATE TABLE future (x);"}};
    options.schema.add(kFuture);
    Store store(loop, options);
    REQUIRE(store.open().ok());
    store.close();
    CHECK(loop.close() == 0);
  }
  Loop loop;
  {
    Store store(loop, options_for(dir));
    Status status = store.open();
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().code == ErrorCode::kUnsupported);
    CHECK(status.error().message.find("150") != std::string::npos);
    CHECK_FALSE(store.is_open());
  }
  CHECK(loop.close() == 0);
}

TEST_CASE(
    "a job that ends the batch transaction fails with the jobs before it; later jobs commit") {
  TempDir dir;
  Loop loop;
  {
    StoreOptions options = options_for(dir);
    Store store(loop, options);
    REQUIRE(store.open().ok());
    std::vector<Status> results;
    {
      WriterGate gate(store);
      for (int i = 0; i < 3; ++i) {
        store.write(
            [i](Database& db) -> Status {
              if (i == 1) return db.exec("ROLLBACK");
              auto id = insert_item(db, i);
              if (!id) return std::move(id).error();
              return ok_status();
            },
            [&](Status s) {
              results.push_back(std::move(s));
              if (results.size() == 3) store.close();
            });
      }
      gate.open();
    }
    loop.run();
    REQUIRE(results.size() == 3);
    // Job 0's insert went down with the transaction job 1 ended, so it must not report success.
    CHECK_FALSE(results[0].ok());
    REQUIRE_FALSE(results[1].ok());
    CHECK(results[1].error().message.find("ended inside a job") != std::string::npos);
    CHECK(results[2].ok());
    CHECK(count_items(options.path) == 1);
  }
  CHECK(loop.close() == 0);
}

TEST_CASE("the store's write connection runs WAL with the configured synchronous level") {
  TempDir dir;
  Loop loop;
  for (auto [level, expected] :
       {std::pair{Synchronous::kFull, "2"}, std::pair{Synchronous::kNormal, "1"}}) {
    StoreOptions options = options_for(dir);
    options.synchronous = level;
    Store store(loop, options);
    REQUIRE(store.open().ok());
    auto settings = store.write_sync<std::string>([](Database& db) -> Result<std::string> {
      auto mode = db.pragma("journal_mode");
      if (!mode) return std::move(mode).error();
      auto sync = db.pragma("synchronous");
      if (!sync) return std::move(sync).error();
      auto fk = db.pragma("foreign_keys");
      if (!fk) return std::move(fk).error();
      return *mode + "/" + *sync + "/" + *fk;
    });
    REQUIRE(settings.has_value());
    CHECK(*settings == std::string("wal/") + expected + "/1");
    store.close();
  }
  CHECK(loop.close() == 0);
}

namespace {

std::string writer_autocheckpoint(Store& store) {
  auto value =
      store.write_sync<std::string>([](Database& db) { return db.pragma("wal_autocheckpoint"); });
  REQUIRE(value.has_value());
  return *value;
}

}  // namespace

TEST_CASE("the writer checkpoints between batches, after answering; never inside a commit") {
  TempDir dir;
  Loop loop;
  StoreOptions options = options_for(dir);
  options.checkpoint_pages = 8;
  Histogram batch_seconds({0.001, 0.01});
  Histogram checkpoint_seconds({0.001, 0.01});
  Histogram background_seconds({0.001, 0.01});
  options.batch_seconds = &batch_seconds;
  options.checkpoint_seconds = &checkpoint_seconds;
  options.background_checkpoint_seconds = &background_seconds;
  Store store(loop, options);
  REQUIRE(store.open().ok());
  CHECK(writer_autocheckpoint(store) == "0");
  auto file_size = [&] { return std::filesystem::file_size(options.path); };
  auto wal_size = [&] { return std::filesystem::file_size(options.path + "-wal"); };
  uintmax_t before = file_size();
  // Rows wide enough that each commit adds pages to the WAL.
  uintmax_t largest_wal = 0;
  for (int i = 0; i < 40; ++i) {
    REQUIRE(store.write_sync([i](Database& db) { return insert_items(db, i * 1000, 50); }));
    largest_wal = std::max(largest_wal, wal_size());
  }
  StoreCounters c = store.counters();
  CHECK(c.checkpoints >= 1);
  // The checkpointer thread copied first; the writer finished each checkpoint.
  CHECK(c.background_checkpoints >= c.checkpoints);
  // What was checkpointed is in the data file itself, and the WAL started over instead of
  // growing with every commit: 40 commits of 50 rows would need several times more.
  CHECK(file_size() > before);
  CHECK(largest_wal < 64 * 4096);
  // A round that ends while no job waits is finished without one: the last writes crossed
  // the threshold again, and with nothing more written the WAL still gets back to the start.
  uint64_t finished = c.checkpoints;
  REQUIRE(store.write_sync([](Database& db) { return insert_items(db, 1'000'000, 600); }));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (store.counters().checkpoints == finished && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(store.counters().checkpoints > finished);
  store.close();
  CHECK(count_items(options.path) == 2600);
  // Each batch and each checkpoint was timed once (the writer has stopped: nothing is late).
  c = store.counters();
  CHECK(batch_seconds.count() == c.commits);
  CHECK(batch_seconds.sum() > 0.0);
  CHECK(checkpoint_seconds.count() == c.checkpoints);
  CHECK(background_seconds.count() == c.background_checkpoints);
  CHECK(loop.close() == 0);
}

TEST_CASE("under commits that never pause, checkpoints still finish and the WAL starts over") {
  // The checkpointer copies while batches keep appending, so on its own it would never reach
  // the WAL's last frame; the writer copies the rest between two batches.
  TempDir dir;
  Loop loop;
  StoreOptions options = options_for(dir);
  options.checkpoint_pages = 16;
  Store store(loop, options);
  REQUIRE(store.open().ok());
  Timer watchdog(loop);
  watchdog.start(60000, 0, [&] { loop.stop(); });
  const std::string wal = options.path + "-wal";
  constexpr int kWrites = 400;
  constexpr int kInFlight = 4;
  int submitted = 0;
  int answered = 0;
  int failed = 0;
  uintmax_t largest_wal = 0;
  std::function<void()> submit = [&] {
    int i = submitted++;
    store.write([i](Database& db) { return insert_items(db, i * 1000, 100); },
                [&](Status st) {
                  if (!st.ok()) ++failed;
                  std::error_code ec;
                  largest_wal = std::max(largest_wal, std::filesystem::file_size(wal, ec));
                  if (submitted < kWrites) submit();
                  if (++answered == kWrites) {
                    watchdog.stop();
                    store.close();
                  }
                });
  };
  for (int i = 0; i < kInFlight; ++i) submit();
  loop.run();
  REQUIRE(answered == kWrites);
  CHECK(failed == 0);
  StoreCounters c = store.counters();
  INFO("commits " << c.commits << ", rounds " << c.background_checkpoints << ", finished "
                  << c.checkpoints << ", largest WAL " << largest_wal);
  CHECK(c.checkpoints >= 2);
  CHECK(c.background_checkpoints >= c.checkpoints);
  // 400 commits of 100 rows make well over 400 WAL frames; the WAL kept starting over.
  CHECK(largest_wal < 200 * 4096);
  CHECK(count_items(options.path) == kWrites * 100);
  CHECK(loop.close() == 0);
}

TEST_CASE("with checkpoint_pages 0 the writer checkpoints in its commits, as SQLite does") {
  TempDir dir;
  Loop loop;
  StoreOptions options = options_for(dir);
  options.checkpoint_pages = 0;
  Store store(loop, options);
  REQUIRE(store.open().ok());
  CHECK(writer_autocheckpoint(store) == "1000");
  store.close();
  CHECK(store.counters().checkpoints == 0);
  CHECK(loop.close() == 0);
}
