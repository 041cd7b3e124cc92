#pragma once

#include <string>
#include <vector>

#include "media/packet.h"
#include "media/remux/timestamps.h"

namespace hawker::media::transcode::test {

/// What ffmpeg is asked to encode: testsrc2 with libx264, no audio.
struct ClipSpec {
  int width = 640;
  int height = 360;
  int fps = 30;
  int frames = 60;
  int gop = 30;  ///< keyframe interval in frames
  int bframes = 0;
  bool operator<(const ClipSpec& o) const;
};

/// Real H.264 as an RTMP publisher sends it: encoded at test time by ffmpeg into a temporary FLV,
/// read back with libavformat and put on the 90 kHz timeline by the stream's normaliser.
struct Clip {
  TrackConfig video;
  std::vector<remux::NormalisedPacket> packets;
  std::string error;  ///< why there is nothing (ffmpeg missing, ...)
};

/// Cached per spec for the test run.
const Clip& clip(const ClipSpec& spec);

/// A temporary directory removed when the test binary exits.
std::string temp_dir();

/// Runs a shell command; returns its exit status, stdout (and stderr when asked) in `output`.
int run_command(const std::string& command, std::string* output = nullptr);

}  // namespace hawker::media::transcode::test
