// Writes seed corpora for the media fuzz targets from the same builders the unit tests use.
// Usage: make_media_corpus <corpus dir>   (normally test/fuzz/corpus)
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "media/rtmp/amf0.h"
#include "media/rtmp/chunk.h"
#include "test/unit/media/media_test_util.h"
#include "test/unit/media/rtmp_test_client.h"

using namespace hawker::media;
using namespace hawker::media::rtmp;
using namespace hawker::media::test;
using Bytes = std::vector<uint8_t>;
using amf0::Value;

namespace {

std::filesystem::path root;

void save(const std::string& target, const std::string& name, const Bytes& bytes) {
  auto dir = root / target;
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

Bytes with_prefix(uint8_t first, const Bytes& rest) {
  Bytes out{first};
  append(out, rest);
  return out;
}

/// [kind][u16 length][body] records for the flv_tag target.
void tag(Bytes& out, bool audio, const Bytes& body) {
  out.push_back(audio ? 1 : 0);
  out.push_back(static_cast<uint8_t>(body.size() >> 8));
  out.push_back(static_cast<uint8_t>(body.size()));
  append(out, body);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  root = argv[1];
  auto record = make_avc_record(make_sps(SpsParams{}));
  SpsParams cropped;
  cropped.width_mbs = 120;
  cropped.height_map_units = 68;
  cropped.crop_bottom = 4;
  auto record_1080 = make_avc_record(make_sps(cropped));

  // amf0
  RtmpTestClient client;
  auto command_body = [](const Bytes& chunked) {
    ChunkReader r;
    Bytes body;
    (void)r.feed(chunked, [&](Message&& m) {
      body = std::move(m.payload);
      return hawker::ok_status();
    });
    return body;
  };
  save("amf0", "connect", command_body(client.connect("live")));
  save("amf0", "publish", command_body(client.publish("key?token=1")));
  save("amf0", "metadata", command_body(client.metadata()));
  save("amf0", "mixed",
       amf0::encode_all(std::vector<Value>{
           Value::make_strict_array({Value::make_number(1), Value::make_boolean(true),
                                     Value::make_null(), Value::make_undefined()}),
           Value::make_date(1.7e12), Value::make_string(std::string(70000, 'x')),
           Value::make_object({{"o", Value::make_object({{"e", Value::make_ecma_array({})}})}})}));
  save("amf0", "truncated", Bytes{0x03, 0x00, 0x03, 'a', 'p', 'p', 0x02, 0x00, 0x09});
  save("amf0", "bad_marker", Bytes{0x11, 0x0d, 0x0e});

  // rtmp_chunk: the first byte chooses where the input is split into two reads.
  Bytes stream = client.set_chunk_size(300);
  append(stream, client.connect("live"));
  append(stream, client.video(0, avc_sequence_header_tag(record)));
  append(stream, client.audio(0xfffffff0u, aac_raw_tag(Bytes(400, 7))));
  save("rtmp_chunk", "messages", with_prefix(17, stream));
  RtmpTestClient small;
  Bytes interleaved = small.video(5, Bytes(500, 1));
  append(interleaved, small.command(70, 0, {Value::make_string("x")}));
  append(interleaved, small.command(400, 1, {Value::make_number(2)}));
  save("rtmp_chunk", "csids", with_prefix(200, interleaved));
  Bytes abort{0x02, 0, 0, 0, 0, 0, 4, 2, 0, 0, 0, 0, 0, 0, 0, 6};
  Bytes aborted{0x06, 0xff, 0xff, 0xff, 0, 1, 0, 9, 1, 0, 0, 0, 0x12, 0x34, 0x56, 0x78};
  aborted.resize(aborted.size() + 128, 3);
  append(aborted, abort);
  save("rtmp_chunk", "extended_abort", with_prefix(40, aborted));
  save("rtmp_chunk", "garbage", Bytes{0x00, 0x44, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x3f});

  // flv_tag
  Bytes avc;
  tag(avc, false, avc_sequence_header_tag(record));
  tag(avc, false, avc_nalu_tag(true, 66, {{0x65, 1, 2, 3}, {0x06, 5}}));
  tag(avc, false, avc_nalu_tag(false, -33, {{0x41, 9}}));
  tag(avc, false, Bytes{0x17, 2, 0, 0, 0});
  save("flv_tag", "avc_720p", avc);
  Bytes avc1080;
  tag(avc1080, false, avc_sequence_header_tag(record_1080));
  save("flv_tag", "avc_1080p_cropped", avc1080);
  Bytes aac;
  tag(aac, true, aac_sequence_header_tag());
  tag(aac, true, aac_raw_tag({0x21, 0x10, 0x04}));
  tag(aac, true, Bytes{0xaf, 0x00, 0xf8, 0x80, 0x00, 0x00, 0x10});
  save("flv_tag", "aac", aac);
  Bytes refused;
  tag(refused, false, Bytes{0x1c, 0, 0, 0, 0});
  tag(refused, false, Bytes{0x90, 'h', 'v', 'c', '1'});
  tag(refused, true, Bytes{0x2f, 0xff, 0xfb});
  save("flv_tag", "refused", refused);

  // rtmp_session: bytes after a simple handshake.
  RtmpTestClient pub;
  Bytes session = pub.connect("live");
  append(session, pub.release_stream("key"));
  append(session, pub.fc_publish("key"));
  append(session, pub.create_stream());
  append(session, pub.publish("key?a=b"));
  append(session, pub.set_chunk_size(4096));
  append(session, pub.metadata());
  append(session, pub.video(0, avc_sequence_header_tag(record)));
  append(session, pub.audio(0, aac_sequence_header_tag()));
  append(session, pub.video(0, avc_nalu_tag(true, 0, {{0x65, 1, 2, 3}})));
  append(session, pub.audio(23, aac_raw_tag({1, 2})));
  append(session, pub.delete_stream());
  save("rtmp_session", "publish", session);
  RtmpTestClient player;
  Bytes play = player.connect("live");
  append(play, player.create_stream());
  append(play, player.command(8, 1,
                              {Value::make_string("play"), Value::make_number(0),
                               Value::make_null(), Value::make_string("key")}));
  save("rtmp_session", "play", play);
  save("rtmp_session", "garbage", Bytes{0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x14, 0x00});
  std::printf("corpus written under %s\n", root.c_str());
  return 0;
}
