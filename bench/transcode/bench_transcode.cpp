// Runs hawker's default ladder over a pre-encoded H.264 file and reports the CPU it took.
//
//   bench_transcode INPUT [--preset P] [--write-rung N OUT.h264]
//
// Prints one line of key=value pairs: media seconds, user and system CPU seconds for the ladder
// alone (the file is read into memory first), and frames per rung.

extern "C" {
#include <libavformat/avformat.h>
#include <libavutil/log.h>
}

#include <fmt/format.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/deleters.h"
#include "media/transcode/ladder.h"

namespace {

using hawker::media::Bytes;
using hawker::media::TrackConfig;
using hawker::media::remux::NormalisedPacket;
using InputPtr = std::unique_ptr<AVFormatContext, hawker::FnRefDeleter<avformat_close_input>>;
using PacketPtr = std::unique_ptr<AVPacket, hawker::FnRefDeleter<av_packet_free>>;

double cpu_seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; }

// Annex B with the parameter sets up front, so ffmpeg can read the rung back as raw H.264.
void write_annexb(std::ofstream& file, const Bytes& avcc) {
  static const char kStartCode[] = {0, 0, 0, 1};
  size_t i = 0;
  while (i + 4 <= avcc.size()) {
    const size_t n = (size_t{avcc[i]} << 24) | (size_t{avcc[i + 1]} << 16) |
                     (size_t{avcc[i + 2]} << 8) | avcc[i + 3];
    i += 4;
    if (n > avcc.size() - i) {
      return;
    }
    file.write(kStartCode, 4);
    file.write(reinterpret_cast<const char*>(avcc.data() + i), static_cast<std::streamsize>(n));
    i += n;
  }
}

void write_parameter_sets(std::ofstream& file, const Bytes& record) {
  Bytes avcc;
  size_t at = 5;
  for (int kind = 0; kind < 2 && at < record.size(); ++kind) {
    const int count = kind == 0 ? (record[at] & 0x1F) : record[at];
    ++at;
    for (int k = 0; k < count && at + 2 <= record.size(); ++k) {
      const size_t n = (size_t{record[at]} << 8) | record[at + 1];
      at += 2;
      avcc.insert(avcc.end(), {0, 0, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)});
      avcc.insert(avcc.end(), record.begin() + static_cast<long>(at),
                  record.begin() + static_cast<long>(at + n));
      at += n;
    }
  }
  write_annexb(file, avcc);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s INPUT [--preset P] [--write-rung N OUT.h264]\n", argv[0]);
    return 2;
  }
  av_log_set_level(AV_LOG_ERROR);
  hawker::media::transcode::LadderConfig config;
  int write_rung = -1;
  std::string write_path;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--preset") == 0 && i + 1 < argc) {
      config.preset = argv[++i];
    } else if (std::strcmp(argv[i], "--write-rung") == 0 && i + 2 < argc) {
      write_rung = std::atoi(argv[++i]);
      write_path = argv[++i];
    } else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }

  AVFormatContext* raw = nullptr;
  if (avformat_open_input(&raw, argv[1], nullptr, nullptr) < 0) {
    std::fprintf(stderr, "cannot open %s\n", argv[1]);
    return 1;
  }
  InputPtr input(raw);
  if (avformat_find_stream_info(raw, nullptr) < 0) {
    std::fprintf(stderr, "cannot read %s\n", argv[1]);
    return 1;
  }
  const int index = av_find_best_stream(raw, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (index < 0 || raw->streams[index]->codecpar->codec_id != AV_CODEC_ID_H264) {
    std::fprintf(stderr, "%s has no H.264 video\n", argv[1]);
    return 1;
  }
  const AVStream* stream = raw->streams[index];
  TrackConfig source;
  source.extradata.assign(stream->codecpar->extradata,
                          stream->codecpar->extradata + stream->codecpar->extradata_size);
  source.width = stream->codecpar->width;
  source.height = stream->codecpar->height;

  const AVRational ticks{1, 90'000};
  std::vector<NormalisedPacket> packets;
  PacketPtr pkt(av_packet_alloc());
  int64_t first = AV_NOPTS_VALUE;
  while (av_read_frame(raw, pkt.get()) >= 0) {
    if (pkt->stream_index == index && pkt->size > 0) {
      if (first == AV_NOPTS_VALUE) {
        first = pkt->dts;
      }
      NormalisedPacket packet;
      packet.dts = av_rescale_q(pkt->dts - first, stream->time_base, ticks);
      packet.pts = av_rescale_q(pkt->pts - first, stream->time_base, ticks);
      packet.keyframe = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
      packet.data = std::make_shared<const Bytes>(pkt->data, pkt->data + pkt->size);
      packets.push_back(std::move(packet));
    }
    av_packet_unref(pkt.get());
  }
  if (packets.size() < 2) {
    std::fprintf(stderr, "%s has too few frames\n", argv[1]);
    return 1;
  }

  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  auto ladder = hawker::media::transcode::Ladder::open(source, config);
  if (!ladder) {
    std::fprintf(stderr, "%s\n", ladder.error().message.c_str());
    return 1;
  }
  std::ofstream rung_file;
  if (write_rung >= 0) {
    if (static_cast<size_t>(write_rung) >= (*ladder)->rung_count()) {
      std::fprintf(stderr, "no rung %d\n", write_rung);
      return 2;
    }
    rung_file.open(write_path, std::ios::binary);
    write_parameter_sets(rung_file, (*ladder)->track(static_cast<size_t>(write_rung)).extradata);
  }
  std::vector<hawker::media::transcode::RungPacket> out;
  int64_t last_pts = 0;
  for (const NormalisedPacket& packet : packets) {
    last_pts = std::max(last_pts, packet.pts);
    if (auto status = (*ladder)->push(packet, false, out); !status) {
      std::fprintf(stderr, "%s\n", status.error().message.c_str());
      return 1;
    }
    for (const auto& encoded : out) {
      if (static_cast<int>(encoded.rung) == write_rung) {
        write_annexb(rung_file, *encoded.packet.data);
      }
    }
    out.clear();
  }
  if (auto status = (*ladder)->finish(out); !status) {
    std::fprintf(stderr, "%s\n", status.error().message.c_str());
    return 1;
  }
  for (const auto& encoded : out) {
    if (static_cast<int>(encoded.rung) == write_rung) {
      write_annexb(rung_file, *encoded.packet.data);
    }
  }
  std::string frames;
  for (size_t i = 0; i < (*ladder)->rung_count(); ++i) {
    const auto stats = (*ladder)->rung_stats(i);
    frames += fmt::format(" rung{}={}p:{}frames:{}kbps", i, (*ladder)->plan(i).height,
                          stats.frames_encoded,
                          stats.bytes * 8 * 90 / std::max<int64_t>(1, last_pts + 3000));
  }
  ladder->reset();
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  const double media_s = static_cast<double>(last_pts + 3000) / 90'000.0;
  fmt::print("media_s={:.3f} user_s={:.3f} sys_s={:.3f} preset={}{}\n", media_s,
             cpu_seconds(after.ru_utime) - cpu_seconds(before.ru_utime),
             cpu_seconds(after.ru_stime) - cpu_seconds(before.ru_stime), config.preset, frames);
  return 0;
}
