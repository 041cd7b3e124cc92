#include "test/unit/hls/media_fixture.h"

extern "C" {
#include <libavformat/avformat.h>
}

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>

#include "core/deleters.h"

namespace hawker::media::test {

namespace {

using PacketPtr = std::unique_ptr<AVPacket, FnRefDeleter<av_packet_free>>;
using InputPtr = std::unique_ptr<AVFormatContext, FnRefDeleter<avformat_close_input>>;

TrackConfig config_from(const AVCodecParameters* par) {
  TrackConfig config;
  config.extradata.assign(par->extradata, par->extradata + par->extradata_size);
  if (par->codec_type == AVMEDIA_TYPE_VIDEO) {
    config.kind = TrackKind::kVideo;
    config.codec = Codec::kH264;
    config.width = par->width;
    config.height = par->height;
    // AVCDecoderConfigurationRecord: version, profile, constraints, level.
    if (config.extradata.size() >= 4) {
      config.profile_idc = config.extradata[1];
      config.constraint_flags = config.extradata[2];
      config.level_idc = config.extradata[3];
    }
  } else {
    config.kind = TrackKind::kAudio;
    config.codec = Codec::kAac;
    config.sample_rate = par->sample_rate;
    config.channels = par->ch_layout.nb_channels;
    config.audio_object_type = 2;
  }
  return config;
}

EncodedStream encode(int seconds, int gop) {
  EncodedStream out;
  const std::string path = fmt::format("{}/in_{}_{}.flv", temp_dir(), seconds, gop);
  const std::string command = fmt::format(
      "ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=320x240:rate=30 -f lavfi -i "
      "sine=frequency=440:sample_rate=44100 -c:v libx264 -preset ultrafast -g {} -bf 0 "
      "-pix_fmt yuv420p -c:a aac -t {} -f flv {}",
      gop, seconds, path);
  if (run_command(command) != 0) {
    out.error = "ffmpeg could not encode the test stream (is ffmpeg with libx264 installed?)";
    return out;
  }
  AVFormatContext* raw = nullptr;
  if (avformat_open_input(&raw, path.c_str(), nullptr, nullptr) < 0) {
    out.error = "cannot open the encoded FLV";
    return out;
  }
  InputPtr input(raw);
  if (avformat_find_stream_info(raw, nullptr) < 0) {
    out.error = "cannot read the encoded FLV's streams";
    return out;
  }
  std::map<int, TrackKind> kinds;
  for (TrackKind want : {TrackKind::kVideo, TrackKind::kAudio}) {
    for (unsigned i = 0; i < raw->nb_streams; ++i) {
      const AVCodecParameters* par = raw->streams[i]->codecpar;
      const bool video = par->codec_type == AVMEDIA_TYPE_VIDEO;
      if ((want == TrackKind::kVideo) == video &&
          (par->codec_type == AVMEDIA_TYPE_VIDEO || par->codec_type == AVMEDIA_TYPE_AUDIO)) {
        out.tracks.push_back(config_from(par));
        kinds[static_cast<int>(i)] = want;
      }
    }
  }
  PacketPtr pkt(av_packet_alloc());
  while (av_read_frame(raw, pkt.get()) >= 0) {
    auto it = kinds.find(pkt->stream_index);
    if (it != kinds.end() && pkt->size > 0) {
      Packet packet;
      packet.kind = it->second;
      const AVRational ms{1, 1000};
      const AVRational tb = raw->streams[pkt->stream_index]->time_base;
      packet.timestamp_ms = static_cast<uint32_t>(av_rescale_q(pkt->dts, tb, ms));
      packet.composition_ms = static_cast<int32_t>(av_rescale_q(pkt->pts - pkt->dts, tb, ms));
      packet.keyframe = packet.kind == TrackKind::kAudio || (pkt->flags & AV_PKT_FLAG_KEY) != 0;
      packet.data = std::make_shared<const Bytes>(pkt->data, pkt->data + pkt->size);
      out.packets.push_back(std::move(packet));
    }
    av_packet_unref(pkt.get());
  }
  return out;
}

}  // namespace

namespace {

// Removes the directory and what the tests wrote into it when the test binary exits.
struct TempDir {
  std::string path;
  TempDir() {
    std::string pattern = "/tmp/hawker-hls-test-XXXXXX";
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

}  // namespace

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

const EncodedStream& encoded_stream(int seconds, int gop) {
  static std::map<std::pair<int, int>, EncodedStream> cache;
  auto key = std::make_pair(seconds, gop);
  auto it = cache.find(key);
  if (it == cache.end()) {
    it = cache.emplace(key, encode(seconds, gop)).first;
  }
  return it->second;
}

}  // namespace hawker::media::test
