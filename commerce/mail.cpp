#include "commerce/mail.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "commerce/streamers.h"
#include "core/clock.h"
#include "core/deleters.h"
#include "core/log.h"
#include "core/loop.h"

namespace hawker::commerce {
namespace {

constexpr const char* kLog = "mail";

constexpr storage::Migration kMigrations[] = {
    {185, "mail outbox", R"sql(
CREATE TABLE mail_outbox (
  id INTEGER PRIMARY KEY,
  recipient TEXT NOT NULL,
  subject TEXT NOT NULL,
  message TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at_ms INTEGER NOT NULL,
  last_error TEXT NOT NULL DEFAULT '',
  delivered_to TEXT NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL,
  sent_at_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX mail_outbox_due ON mail_outbox(status, next_attempt_at_ms);
)sql"},
};

std::string wrapped_base64(std::string_view data) {
  std::string b64 = base64_encode(data);
  std::string out;
  out.reserve(b64.size() + b64.size() / 76 * 2 + 2);
  for (size_t i = 0; i < b64.size(); i += 76) {
    out.append(b64, i, 76);
    out += "\r\n";
  }
  return out;
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string when(int64_t ms) {
  std::string s = format_rfc3339(ms);
  // "2026-11-22T18:00:00Z" -> "2026-11-22 18:00 UTC": what a person reads in a mail client.
  return fmt::format("{} {} UTC", s.substr(0, 10), s.substr(11, 5));
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using SlistPtr = CPtr<curl_slist, curl_slist_free_all>;

struct Upload {
  std::string_view data;
  size_t offset = 0;
};

size_t read_upload(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* up = static_cast<Upload*>(userdata);
  size_t n = std::min(size * nitems, up->data.size() - up->offset);
  std::memcpy(buffer, up->data.data() + up->offset, n);
  up->offset += n;
  return n;
}

Result<std::string> send_smtp(const SmtpSettings& s, const QueuedMail& mail) {
  CurlPtr curl(curl_easy_init());
  if (!curl) return unexpected(ErrorCode::kInternal, "curl_easy_init failed");
  CURL* c = curl.get();
  char errbuf[CURL_ERROR_SIZE] = {0};
  SlistPtr rcpt(curl_slist_append(nullptr, fmt::format("<{}>", mail.recipient).c_str()));
  Upload up{mail.message, 0};
  std::string from = fmt::format("<{}>", s.from);
  curl_easy_setopt(c, CURLOPT_URL, s.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt.get());
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, read_upload);
  curl_easy_setopt(c, CURLOPT_READDATA, &up);
  curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(mail.message.size()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(s.timeout_ms / 3));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(s.timeout_ms));
  // smtps:// is TLS from the first byte; on smtp:// STARTTLS is used whenever the server offers
  // it, and demanded when the seller says so.
  curl_easy_setopt(c, CURLOPT_USE_SSL, s.require_tls ? CURLUSESSL_ALL : CURLUSESSL_TRY);
  if (!s.user.empty()) {
    curl_easy_setopt(c, CURLOPT_USERNAME, s.user.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, s.password.reveal().c_str());
  }
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    long response = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response);
    std::string detail = errbuf[0] != 0 ? errbuf : curl_easy_strerror(rc);
    return unexpected(ErrorCode::kUnavailable,
                      response > 0 ? fmt::format("{} (SMTP {})", detail, response) : detail);
  }
  // The URL names the server; it never carries the password (that is a separate key).
  std::string where = s.url;
  if (auto at = where.find('@'); at != std::string::npos) {
    where = where.substr(0, where.find("://") + 3) + where.substr(at + 1);
  }
  return where;
}

Result<std::string> write_eml(const SmtpSettings& s, const QueuedMail& mail) {
  std::error_code ec;
  std::filesystem::create_directories(s.mail_dir, ec);
  if (ec) return unexpected(ErrorCode::kIo, fmt::format("create {}: {}", s.mail_dir, ec.message()));
  std::string stamp = format_rfc3339(mail.created_at_ms);
  for (char& ch : stamp) {
    if (ch == ':') ch = '-';
  }
  auto path = std::filesystem::path(s.mail_dir) / fmt::format("{}-{}.eml", stamp, mail.id);
  auto tmp = path;
  tmp += ".tmp";
  // The file holds the stream key: readable by hawker's user only.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return unexpected(ErrorCode::kIo, fmt::format("open {}", tmp.string()));
  size_t done = 0;
  while (done < mail.message.size()) {
    ssize_t n = ::write(fd, mail.message.data() + done, mail.message.size() - done);
    if (n <= 0) {
      ::close(fd);
      return unexpected(ErrorCode::kIo, fmt::format("write {}", tmp.string()));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return unexpected(ErrorCode::kIo, fmt::format("sync {}", tmp.string()));
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec)
    return unexpected(ErrorCode::kIo, fmt::format("rename {}: {}", path.string(), ec.message()));
  return path.string();
}

/// The sender may be a local name (hawker@localhost), which valid_email refuses for recipients.
bool valid_sender(std::string_view from) {
  size_t at = from.find('@');
  if (at == 0 || at == std::string_view::npos || at + 1 >= from.size() || from.size() > 254) {
    return false;
  }
  for (unsigned char c : from) {
    if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == ',' || c == ';' || c == '"') {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string header_safe(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) out += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
  return out;
}

std::string encode_header_text(std::string_view text) {
  std::string safe = header_safe(text);
  bool ascii = true;
  for (unsigned char c : safe) ascii = ascii && c < 0x80;
  if (ascii) return safe;
  // One encoded-word per chunk of whole UTF-8 characters, each under the 75-character limit.
  std::string out;
  size_t i = 0;
  while (i < safe.size()) {
    size_t end = std::min(safe.size(), i + 45);
    while (end < safe.size() && (static_cast<unsigned char>(safe[end]) & 0xC0) == 0x80) --end;
    if (!out.empty()) out += "\r\n ";
    out += fmt::format("=?UTF-8?B?{}?=", base64_encode(safe.substr(i, end - i)));
    i = end;
  }
  return out;
}

std::string rfc5322_date(int64_t wall_ms) {
  std::time_t t = static_cast<std::time_t>(wall_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  static const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  return fmt::format("{}, {:02d} {} {:04d} {:02d}:{:02d}:{:02d} +0000", kDays[tm.tm_wday],
                     tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
}

std::string mail_domain(std::string_view address) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos || at + 1 >= address.size()) return "localhost";
  return std::string(address.substr(at + 1));
}

Result<std::string> render_mime(std::string_view from, const MailMessage& message, int64_t now_ms) {
  if (!valid_sender(from)) {
    return unexpected(ErrorCode::kInvalidArgument,
                      fmt::format("sender \"{}\" is not an address", header_safe(from)));
  }
  if (!valid_email(message.to)) {
    return unexpected(ErrorCode::kInvalidArgument,
                      fmt::format("recipient \"{}\" is not an address", header_safe(message.to)));
  }
  auto id = random_bytes(12);
  if (!id) return unexpected(std::move(id).error());
  auto boundary = random_bytes(12);
  if (!boundary) return unexpected(std::move(boundary).error());
  std::string b = "hawker-" + hex_encode(*boundary);
  std::string out;
  out += fmt::format("Date: {}\r\n", rfc5322_date(now_ms));
  out += fmt::format("Message-ID: <{}@{}>\r\n", hex_encode(*id), mail_domain(from));
  out += fmt::format("From: hawker <{}>\r\n", from);
  out += fmt::format("To: <{}>\r\n", message.to);
  out += fmt::format("Subject: {}\r\n", encode_header_text(message.subject));
  out += "MIME-Version: 1.0\r\n";
  out += "Auto-Submitted: auto-generated\r\n";
  out += fmt::format("Content-Type: multipart/alternative; boundary=\"{}\"\r\n", b);
  out += "\r\n";
  out += "This is a multi-part message in MIME format.\r\n";
  out += fmt::format("--{}\r\n", b);
  out += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n";
  out += wrapped_base64(message.text);
  out += fmt::format("--{}\r\n", b);
  out += "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n";
  out += wrapped_base64(message.html);
  out += fmt::format("--{}--\r\n", b);
  return out;
}

MailMessage render_stream_key_mail(const StreamKeyMail& m) {
  MailMessage out;
  out.to = m.to;
  bool has_key = !m.key.empty();
  if (m.reason == StreamKeyMail::Reason::kRotated) {
    out.subject = fmt::format("Your new stream key for {}", m.channel);
  } else if (!m.schedule.empty()) {
    out.subject = fmt::format("You are scheduled to stream: {}", m.schedule.front().title);
  } else {
    out.subject = fmt::format("Your stream key for {}", m.channel);
  }
  std::string intro =
      m.reason == StreamKeyMail::Reason::kRotated
          ? "Your stream key was replaced. The old key has stopped working: put the new one in "
            "OBS before your next show."
          : "A live shopping broadcast was scheduled for you. Here is everything you need to go "
            "live from OBS.";
  std::string key_line =
      has_key ? m.key.reveal()
              : fmt::format(
                    "(unchanged: the key ending in {} that you already have; if it is "
                    "lost, ask the seller to rotate it)",
                    m.key_hint.empty() ? "?" : m.key_hint);
  struct Setting {
    const char* name;
    std::string value;
  };
  const std::vector<Setting> settings = {
      {"Service", "Custom..."},
      {"Server", m.rtmp_url},
      {"Stream Key", has_key ? "the key above" : "your key"},
      {"Output Mode", "Advanced"},
      {"Rate Control", "CBR"},
      {"Bitrate", "3000 Kbps for 1280x720 at 30 fps (at most 2/3 of your upload speed)"},
      {"Keyframe Interval", "1 s"},
      {"CPU Usage Preset", "veryfast"},
      {"Tune", "zerolatency"},
      {"Audio", "AAC 128 Kbps, 48 kHz"},
  };

  std::string text =
      fmt::format("Hello,\n\n{}\n\nChannel: {}\nRTMP server URL: {}\nStream key: {}\n", intro,
                  m.channel, m.rtmp_url, key_line);
  text +=
      "\nKeep the key secret: anyone who has it can stream on your channel.\n\nSchedule (UTC):\n";
  if (m.schedule.empty()) text += "  nothing scheduled yet\n";
  for (const auto& s : m.schedule) {
    text += fmt::format("  - {}: {} to {}\n", header_safe(s.title), when(s.starts_at_ms),
                        when(s.ends_at_ms));
  }
  text +=
      "\nOBS settings for about one second of delay (Settings > Stream and Settings > "
      "Output):\n";
  for (const auto& s : settings) text += fmt::format("  {}: {}\n", s.name, s.value);
  text += fmt::format(
      "\nThe keyframe interval of 1 s matters most: it lets viewers start and stay about one "
      "second behind you.\n\nViewers watch at {}\n\n-- hawker\n",
      m.watch_url);

  std::string html = "<!doctype html><html><body style=\"font-family:sans-serif;line-height:1.5\">";
  html += fmt::format("<p>Hello,</p><p>{}</p>", html_escape(intro));
  html += "<table cellpadding=\"4\">";
  html +=
      fmt::format("<tr><th align=\"left\">Channel</th><td>{}</td></tr>", html_escape(m.channel));
  html += fmt::format("<tr><th align=\"left\">RTMP server URL</th><td><code>{}</code></td></tr>",
                      html_escape(m.rtmp_url));
  html += fmt::format("<tr><th align=\"left\">Stream key</th><td><code>{}</code></td></tr>",
                      html_escape(key_line));
  html += "</table><p>Keep the key secret: anyone who has it can stream on your channel.</p>";
  html += "<h3>Schedule (UTC)</h3><ul>";
  if (m.schedule.empty()) html += "<li>nothing scheduled yet</li>";
  for (const auto& s : m.schedule) {
    html += fmt::format("<li><b>{}</b>: {} to {}</li>", html_escape(s.title), when(s.starts_at_ms),
                        when(s.ends_at_ms));
  }
  html += "</ul><h3>OBS settings for about one second of delay</h3><table cellpadding=\"4\">";
  for (const auto& s : settings) {
    html +=
        fmt::format("<tr><th align=\"left\">{}</th><td>{}</td></tr>", s.name, html_escape(s.value));
  }
  html += fmt::format(
      "</table><p>The keyframe interval of 1 s matters most: it lets viewers start and stay "
      "about one second behind you.</p><p>Viewers watch at <a href=\"{0}\">{0}</a></p>"
      "<p>&mdash; hawker</p></body></html>",
      html_escape(m.watch_url));
  out.text = std::move(text);
  out.html = std::move(html);
  return out;
}

std::span<const storage::Migration> mail_migrations() { return kMigrations; }

Result<int64_t> enqueue_mail(storage::Database& db, std::string_view from,
                             const MailMessage& message, int64_t now_ms) {
  auto mime = render_mime(from, message, now_ms);
  if (!mime) return unexpected(std::move(mime).error());
  auto stmt = db.cached(
      "INSERT INTO mail_outbox (recipient, subject, message, status, next_attempt_at_ms, "
      "created_at_ms) VALUES (?, ?, ?, 'pending', ?, ?)");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)
      ->bind_text(1, message.to)
      .bind_text(2, header_safe(message.subject))
      .bind_text(3, *mime)
      .bind_int64(4, now_ms)
      .bind_int64(5, now_ms);
  HAWKER_TRY_STATUS((*stmt)->run(), "queue mail");
  return db.last_insert_rowid();
}

Result<std::vector<QueuedMail>> claim_due_mail(storage::Database& db, int64_t now_ms,
                                               int64_t lease_ms, size_t limit) {
  auto stmt = db.cached(
      "UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at_ms = ? WHERE id IN "
      "(SELECT id FROM mail_outbox WHERE status = 'pending' AND next_attempt_at_ms <= ? "
      "ORDER BY next_attempt_at_ms LIMIT ?) "
      "RETURNING id, recipient, subject, message, attempts, created_at_ms");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)
      ->bind_int64(1, now_ms + lease_ms)
      .bind_int64(2, now_ms)
      .bind_int64(3, static_cast<int64_t>(limit));
  std::vector<QueuedMail> out;
  while (true) {
    auto step = (*stmt)->step();
    if (!step) return unexpected(std::move(step).error());
    if (*step == storage::Statement::Step::kDone) break;
    const auto& s = **stmt;
    QueuedMail m;
    m.id = s.column_int64(0);
    m.recipient = std::string(s.column_text(1));
    m.subject = std::string(s.column_text(2));
    m.message = std::string(s.column_text(3));
    m.attempts = static_cast<int>(s.column_int64(4));
    m.created_at_ms = s.column_int64(5);
    out.push_back(std::move(m));
  }
  return out;
}

Status mark_mail_sent(storage::Database& db, int64_t id, int64_t now_ms, std::string_view where) {
  auto stmt = db.cached(
      "UPDATE mail_outbox SET status = 'sent', message = '', last_error = '', sent_at_ms = ?, "
      "delivered_to = ? WHERE id = ?");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_int64(1, now_ms).bind_text(2, where).bind_int64(3, id);
  return (*stmt)->run();
}

Status mark_mail_failed(storage::Database& db, int64_t id, std::string_view error,
                        int64_t next_attempt_ms, bool give_up) {
  auto stmt = db.cached(
      "UPDATE mail_outbox SET status = ?, message = CASE WHEN ? THEN '' ELSE message END, "
      "last_error = ?, next_attempt_at_ms = ? WHERE id = ?");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)
      ->bind_text(1, give_up ? "failed" : "pending")
      .bind_int64(2, give_up ? 1 : 0)
      .bind_text(3, error.substr(0, 500))
      .bind_int64(4, next_attempt_ms)
      .bind_int64(5, id);
  return (*stmt)->run();
}

Result<std::optional<int64_t>> next_mail_due(storage::Database& db) {
  auto stmt = db.cached("SELECT min(next_attempt_at_ms) FROM mail_outbox WHERE status = 'pending'");
  if (!stmt) return unexpected(std::move(stmt).error());
  auto step = (*stmt)->step();
  if (!step) return unexpected(std::move(step).error());
  if (*step == storage::Statement::Step::kDone || (*stmt)->column_is_null(0)) {
    return std::optional<int64_t>{};
  }
  return std::optional<int64_t>{(*stmt)->column_int64(0)};
}

int64_t mail_retry_delay_ms(int attempts, int64_t initial_ms, int64_t max_ms) {
  int64_t delay = std::max<int64_t>(initial_ms, 1);
  for (int i = 1; i < attempts && delay < max_ms; ++i) delay *= 2;
  return std::min(delay, max_ms);
}

Result<std::string> deliver_mail(const SmtpSettings& settings, const QueuedMail& mail) {
  if (settings.url.empty()) return write_eml(settings, mail);
  return send_smtp(settings, mail);
}

size_t send_due_mail(storage::Store& store, const SmtpSettings& settings,
                     const MailSenderOptions& options, int64_t now_ms) {
  auto due = store.write_sync<std::vector<QueuedMail>>(
      [&](storage::Database& db) { return claim_due_mail(db, now_ms, options.lease_ms, 16); });
  if (!due) {
    log::warn(kLog, "reading the mail outbox failed: {}", due.error().message);
    return 0;
  }
  size_t sent = 0;
  for (const auto& m : *due) {
    auto where = deliver_mail(settings, m);
    int64_t now = SystemClock::instance().wall_ms();
    Status recorded;
    if (where) {
      ++sent;
      log::info(kLog, "mail={} to={} \"{}\" delivered to {}", m.id, m.recipient,
                header_safe(m.subject), *where);
      recorded = store.write_sync(
          [&](storage::Database& db) { return mark_mail_sent(db, m.id, now, *where); });
    } else {
      bool give_up = m.attempts >= options.max_attempts;
      int64_t next =
          now + mail_retry_delay_ms(m.attempts, options.retry_initial_ms, options.retry_max_ms);
      if (give_up) {
        log::error(kLog, "mail={} to={} given up after {} attempts: {}", m.id, m.recipient,
                   m.attempts, where.error().message);
      } else {
        log::warn(kLog, "mail={} to={} attempt {} failed: {}; next in {} ms", m.id, m.recipient,
                  m.attempts, where.error().message, next - now);
      }
      recorded = store.write_sync([&](storage::Database& db) {
        return mark_mail_failed(db, m.id, where.error().message, next, give_up);
      });
    }
    if (!recorded)
      log::warn(kLog, "mail={} outcome not recorded: {}", m.id, recorded.error().message);
  }
  return sent;
}

MailSender::MailSender(storage::Store& store, SmtpSettings settings, MailSenderOptions options)
    : store_(store), settings_(std::move(settings)), options_(options) {}

MailSender::~MailSender() { stop(); }

void MailSender::start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void MailSender::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void MailSender::wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  cv_.notify_all();
}

void MailSender::run() {
  set_thread_name("mail-send");
  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      woken_ = false;
    }
    int64_t now = SystemClock::instance().wall_ms();
    send_due_mail(store_, settings_, options_, now);
    int64_t wait = options_.poll_ms;
    auto next = store_.read_sync<std::optional<int64_t>>(
        [](storage::Database& db) { return next_mail_due(db); });
    if (next && next->has_value()) {
      wait = std::clamp<int64_t>(**next - SystemClock::instance().wall_ms(), 50, options_.poll_ms);
    }
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, std::chrono::milliseconds(wait), [this] { return stopping_ || woken_; });
  }
}

}  // namespace hawker::commerce
