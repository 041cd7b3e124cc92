#include "http/gzip.h"

#include <zlib.h>

#include <cstdlib>

#include "http/request.h"

namespace hawker::http {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The q value of one Accept-Encoding item ("gzip;q=0.5"); 1 when absent or unreadable.
double q_value(std::string_view params) {
  size_t pos = 0;
  while (pos < params.size()) {
    size_t semi = params.find(';', pos);
    if (semi == std::string_view::npos) semi = params.size();
    std::string_view p = trim(params.substr(pos, semi - pos));
    if (p.size() >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
      std::string v(p.substr(2));
      char* end = nullptr;
      double q = std::strtod(v.c_str(), &end);
      if (end != v.c_str()) return q;
    }
    pos = semi + 1;
  }
  return 1.0;
}

}  // namespace

std::optional<std::string> gzip_compress(std::string_view data, int level) {
  z_stream zs{};
  // 15 window bits + 16 selects the gzip wrapper instead of zlib's.
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return std::nullopt;
  }
  std::string out;
  out.resize(deflateBound(&zs, data.size()));
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  size_t produced = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return std::nullopt;
  out.resize(produced);
  return out;
}

std::optional<std::string> gzip_decompress(std::string_view data, size_t max_output) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return std::nullopt;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buf[16384];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      return std::nullopt;
    }
    out.append(buf, sizeof(buf) - zs.avail_out);
    if (out.size() > max_output || (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0)) {
      inflateEnd(&zs);
      return std::nullopt;
    }
  }
  inflateEnd(&zs);
  return out;
}

bool accepts_gzip(std::string_view accept_encoding) {
  bool gzip_listed = false;
  double gzip_q = 0;
  double star_q = -1;
  size_t pos = 0;
  while (pos <= accept_encoding.size()) {
    size_t comma = accept_encoding.find(',', pos);
    if (comma == std::string_view::npos) comma = accept_encoding.size();
    std::string_view item = trim(accept_encoding.substr(pos, comma - pos));
    size_t semi = item.find(';');
    std::string_view coding = trim(item.substr(0, semi));
    double q = semi == std::string_view::npos ? 1.0 : q_value(item.substr(semi + 1));
    if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) {
      gzip_listed = true;
      gzip_q = q;
    } else if (coding == "*") {
      star_q = q;
    }
    pos = comma + 1;
  }
  if (gzip_listed) return gzip_q > 0;
  return star_q > 0;
}

}  // namespace hawker::http
