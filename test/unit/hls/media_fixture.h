#pragma once

#include <string>
#include <vector>

#include "media/packet.h"

namespace hawker::media::test {

/// Real H.264 + AAC, as an RTMP publisher would send it: encoded at test time by ffmpeg into a
/// temporary FLV and read back with libavformat's FLV demuxer.
struct EncodedStream {
  std::vector<TrackConfig> tracks;  ///< video first, then audio
  std::vector<Packet> packets;      ///< in file order, FLV millisecond timestamps
  std::string error;                ///< why there is nothing (ffmpeg missing, ...)
};

/// Encodes `seconds` of testsrc2 (320x240, 30 fps, keyframe every `gop` frames, no B-frames)
/// and a sine (44.1 kHz AAC). Results are cached per argument pair for the test run.
const EncodedStream& encoded_stream(int seconds, int gop);

/// A fresh temporary directory for this process.
std::string temp_dir();

/// Runs a shell command, returns its exit status and stdout.
int run_command(const std::string& command, std::string* output = nullptr);

}  // namespace hawker::media::test
