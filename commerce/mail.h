#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/result.h"
#include "core/secret.h"
#include "storage/migrations.h"
#include "storage/sqlite.h"
#include "storage/store.h"

namespace hawker::commerce {

/// One email before it is encoded: UTF-8 text and HTML versions of the same content.
struct MailMessage {
  std::string to;
  std::string subject;
  std::string text;
  std::string html;
};

/// Text safe inside a header: CR, LF and other control characters become spaces, so a title
/// with a line break can never add a header.
std::string header_safe(std::string_view text);
/// A header value: as is when printable ASCII, else an RFC 2047 encoded-word (UTF-8, base64).
std::string encode_header_text(std::string_view text);
/// RFC 5322 date: "Sun, 22 Nov 2026 18:00:00 +0000".
std::string rfc5322_date(int64_t wall_ms);
/// The part of an address after '@' ("localhost" when there is none).
std::string mail_domain(std::string_view address);

/// The message as sent: Date, Message-ID, From, To, Subject, MIME-Version and a
/// multipart/alternative body (text, then HTML, each UTF-8 in base64), CRLF line ends.
/// kInvalidArgument when an address is not one.
Result<std::string> render_mime(std::string_view from, const MailMessage& message, int64_t now_ms);

/// What the streamer's onboarding email says.
struct StreamKeyMail {
  enum class Reason { kScheduled, kRotated };
  struct Show {
    std::string title;
    int64_t starts_at_ms = 0;
    int64_t ends_at_ms = 0;
  };
  Reason reason = Reason::kScheduled;
  std::string to;
  std::string channel;
  /// The key in clear when one was issued now; otherwise empty and `key_hint` names it.
  Secret key;
  std::string key_hint;
  std::string rtmp_url;
  std::string watch_url;
  std::vector<Show> schedule;
};

/// Renders the email with the key (or its hint), the RTMP URL, the schedule and the OBS
/// settings for low latency (keyframe interval 1 s, CBR, a suggested bitrate).
MailMessage render_stream_key_mail(const StreamKeyMail& mail);

/// The mail outbox (migration 185).
std::span<const storage::Migration> mail_migrations();

/// Inside a write job: renders and queues a message, due now. Returns its id.
Result<int64_t> enqueue_mail(storage::Database& db, std::string_view from,
                             const MailMessage& message, int64_t now_ms);

struct QueuedMail {
  int64_t id = 0;
  std::string recipient;
  std::string subject;
  std::string message;  ///< the encoded message (holds the key until sent)
  int attempts = 0;     ///< including the one this claim starts
  int64_t created_at_ms = 0;
};

/// Inside a write job: takes up to `limit` due messages and pushes their next attempt `lease_ms`
/// away, so another sender (the CLI, or a process that crashed mid-send) does not send them
/// twice unless the lease runs out.
Result<std::vector<QueuedMail>> claim_due_mail(storage::Database& db, int64_t now_ms,
                                               int64_t lease_ms, size_t limit);
/// Inside a write job: the message was accepted; its body (which holds the key) is erased.
Status mark_mail_sent(storage::Database& db, int64_t id, int64_t now_ms, std::string_view where);
/// Inside a write job: the attempt failed; retried at `next_attempt_ms`, or given up (status
/// failed, body erased) when `give_up`.
Status mark_mail_failed(storage::Database& db, int64_t id, std::string_view error,
                        int64_t next_attempt_ms, bool give_up);
/// When the earliest pending message is due, if any.
Result<std::optional<int64_t>> next_mail_due(storage::Database& db);

/// The wait before the next attempt after `attempts` failed ones: initial, doubling, capped.
int64_t mail_retry_delay_ms(int attempts, int64_t initial_ms, int64_t max_ms);

struct SmtpSettings {
  /// smtp://host:port (STARTTLS when offered, or always with `require_tls`) or smtps://; empty
  /// writes each message as an .eml file under `mail_dir` instead.
  std::string url;
  std::string from;
  std::string user;
  Secret password;
  bool require_tls = false;
  std::string mail_dir;
  int64_t timeout_ms = 30'000;
};

/// Sends one message over SMTP with libcurl, or writes `<mail_dir>/<id>.eml` (mode 0600). Blocks:
/// call it off the loop. Returns where it went (the server, or the file's path).
Result<std::string> deliver_mail(const SmtpSettings& settings, const QueuedMail& mail);

struct MailSenderOptions {
  int64_t retry_initial_ms = 30'000;
  int64_t retry_max_ms = 3'600'000;
  int max_attempts = 60;
  int64_t lease_ms = 5 * 60'000;
  /// Longest wait between two looks at the outbox (messages queued by another process).
  int64_t poll_ms = 5'000;
};

/// Sends what is due in the outbox once, blocking (the CLI, and each round of MailSender).
/// Returns how many were delivered.
size_t send_due_mail(storage::Store& store, const SmtpSettings& settings,
                     const MailSenderOptions& options, int64_t now_ms);

/// Delivers the mail outbox on a thread of its own, so neither SMTP nor the disk blocks the
/// loop. A message that fails waits (mail_retry_delay_ms) and is tried again; an SMTP server
/// that is down delays mail but never loses it.
class MailSender {
 public:
  MailSender(storage::Store& store, SmtpSettings settings, MailSenderOptions options);
  ~MailSender();
  MailSender(const MailSender&) = delete;
  MailSender& operator=(const MailSender&) = delete;

  void start();
  /// Stops after the message in flight; joins the thread. Idempotent. Call before the Store
  /// closes.
  void stop();
  /// Something was queued: look at the outbox now. Any thread.
  void wake();

 private:
  void run();

  storage::Store& store_;
  SmtpSettings settings_;
  MailSenderOptions options_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool woken_ = false;
  std::thread thread_;
};

}  // namespace hawker::commerce
