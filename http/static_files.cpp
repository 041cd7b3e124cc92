#include "http/static_files.h"

#include <algorithm>

#include "http/gzip.h"

namespace hawker::http {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string_view opaque(std::string_view tag) {
  if (tag.size() >= 2 && tag.substr(0, 2) == "W/") tag.remove_prefix(2);
  return tag;
}

}  // namespace

const EmbeddedFile* find_embedded(std::string_view path) {
  auto files = embedded_files();
  auto it = std::lower_bound(files.begin(), files.end(), path,
                             [](const EmbeddedFile& f, std::string_view p) { return f.path < p; });
  if (it == files.end() || it->path != path) return nullptr;
  return &*it;
}

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  if (trim(if_none_match) == "*") return true;
  size_t pos = 0;
  while (pos <= if_none_match.size()) {
    size_t comma = if_none_match.find(',', pos);
    if (comma == std::string_view::npos) comma = if_none_match.size();
    std::string_view tag = trim(if_none_match.substr(pos, comma - pos));
    if (!tag.empty() && opaque(tag) == opaque(etag)) return true;
    pos = comma + 1;
  }
  return false;
}

Handler static_handler(StaticOptions options) {
  return [options = std::move(options)](const Request& request, ExchangePtr exchange) {
    std::string path = "/" + std::string(request.param(options.param));
    if (path.back() == '/') path += options.index;
    const EmbeddedFile* file = find_embedded(path);
    if (file == nullptr) {
      exchange->respond(
          Response::problem(404, "not-found", "Not found", "no such file: " + request.path));
      return;
    }
    auto accept = request.header("Accept-Encoding");
    bool gzip = !file->gzipped.empty() && accept && accepts_gzip(*accept);
    std::string_view etag = gzip ? file->etag_gzip : file->etag;
    Response r;
    if (auto inm = request.header("If-None-Match"); inm && etag_matches(*inm, etag)) {
      r.status = 304;
    } else {
      r.status = 200;
      r.body = StaticBody{gzip ? file->gzipped : file->bytes};
      r.headers.set("Content-Type", std::string(file->content_type));
      if (gzip) r.headers.set("Content-Encoding", "gzip");
    }
    r.headers.set("ETag", std::string(etag));
    r.headers.set("Cache-Control", options.cache_control);
    if (!file->gzipped.empty()) r.headers.set("Vary", "Accept-Encoding");
    exchange->respond(std::move(r));
  };
}

}  // namespace hawker::http
