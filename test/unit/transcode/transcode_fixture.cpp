#include "test/unit/transcode/transcode_fixture.h"

extern "C" {
#include <libavformat/avformat.h>
#include <libavutil/log.h>
}

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <tuple>

#include "core/deleters.h"

namespace hawker::media::transcode::test {

namespace {

using PacketPtr = std::unique_ptr<AVPacket, FnRefDeleter<av_packet_free>>;
using InputPtr = std::unique_ptr<AVFormatContext, FnRefDeleter<avformat_close_input>>;

struct TempDir {
  std::string path;
  TempDir() {
    std::string pattern = "/tmp/hawker-transcode-test-XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) {
      path = pattern;
    }
  }
  ~TempDir() {
    if (!path.empty()) {
      std::filesystem::remove_all(path);
    }
  }
};

Clip encode(const ClipSpec& spec) {
  // libx264 reports every encoder it opens and closes at info level.
  av_log_set_level(AV_LOG_ERROR);
  Clip out;
  const std::string path = fmt::format("{}/clip_{}x{}_{}_{}_{}_{}.flv", temp_dir(), spec.width,
                                       spec.height, spec.fps, spec.frames, spec.gop, spec.bframes);
  const std::string command = fmt::format(
      "ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size={}x{}:rate={} -frames:v {} "
      "-c:v libx264 -preset ultrafast -g {} -keyint_min {} -sc_threshold 0 -bf {} "
      "-pix_fmt yuv420p -f flv {}",
      spec.width, spec.height, spec.fps, spec.frames, spec.gop, spec.gop, spec.bframes, path);
  if (run_command(command) != 0) {
    out.error = "ffmpeg could not encode the test clip (is ffmpeg with libx264 installed?)";
    return out;
  }
  AVFormatContext* raw = nullptr;
  if (avformat_open_input(&raw, path.c_str(), nullptr, nullptr) < 0) {
    out.error = "cannot open the encoded FLV";
    return out;
  }
  InputPtr input(raw);
  if (avformat_find_stream_info(raw, nullptr) < 0 || raw->nb_streams != 1 ||
      raw->streams[0]->codecpar->codec_type != AVMEDIA_TYPE_VIDEO) {
    out.error = "the encoded FLV does not hold one video stream";
    return out;
  }
  const AVCodecParameters* par = raw->streams[0]->codecpar;
  out.video.kind = TrackKind::kVideo;
  out.video.codec = Codec::kH264;
  out.video.extradata.assign(par->extradata, par->extradata + par->extradata_size);
  out.video.width = par->width;
  out.video.height = par->height;
  if (out.video.extradata.size() >= 4) {
    out.video.profile_idc = out.video.extradata[1];
    out.video.constraint_flags = out.video.extradata[2];
    out.video.level_idc = out.video.extradata[3];
  }
  remux::TimestampNormaliser normaliser;
  const AVRational ms{1, 1000};
  const AVRational tb = raw->streams[0]->time_base;
  PacketPtr pkt(av_packet_alloc());
  while (av_read_frame(raw, pkt.get()) >= 0) {
    if (pkt->size > 0) {
      Packet packet;
      packet.kind = TrackKind::kVideo;
      packet.timestamp_ms = static_cast<uint32_t>(av_rescale_q(pkt->dts, tb, ms));
      packet.composition_ms = static_cast<int32_t>(av_rescale_q(pkt->pts - pkt->dts, tb, ms));
      packet.keyframe = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
      packet.data = std::make_shared<const Bytes>(pkt->data, pkt->data + pkt->size);
      out.packets.push_back(normaliser.normalise(packet));
    }
    av_packet_unref(pkt.get());
  }
  return out;
}

}  // namespace

bool ClipSpec::operator<(const ClipSpec& o) const {
  return std::tie(width, height, fps, frames, gop, bframes) <
         std::tie(o.width, o.height, o.fps, o.frames, o.gop, o.bframes);
}

const Clip& clip(const ClipSpec& spec) {
  static std::map<ClipSpec, Clip> cache;
  auto it = cache.find(spec);
  if (it == cache.end()) {
    it = cache.emplace(spec, encode(spec)).first;
  }
  return it->second;
}

std::string temp_dir() {
  static const TempDir dir;
  return dir.path;
}

int run_command(const std::string& command, std::string* output) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return -1;
  }
  char buffer[4096];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    if (output != nullptr) {
      output->append(buffer, n);
    }
  }
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace hawker::media::transcode::test
