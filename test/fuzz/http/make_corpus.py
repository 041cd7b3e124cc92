#!/usr/bin/env python3
"""Writes the seed corpus for the http_request fuzz target into test/fuzz/corpus/http_request/.
The first byte of each input picks the read size the target splits the rest into."""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "corpus", "http_request")

SEEDS = {
    "get_keepalive": b"GET /api/products/p_1?q=a+b HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip;q=0.5, br\r\n\r\n",
    "pipelined": (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
                  b"POST /api/orders HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n{\"qty\": 2}\n"
                  b"GET /hls/live/720p/part-1.m4s HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
    "chunked": (b"POST /api/orders HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"),
    "playlist_blocking": (b"GET /hls/live/index.m3u8?_HLS_msn=12&_HLS_part=3&_HLS_skip=YES HTTP/1.1\r\n"
                          b"Host: h\r\n\r\n"),
    "sse_resume": b"GET /events?lastEventId=41 HTTP/1.1\r\nHost: h\r\nLast-Event-ID: 42\r\n\r\n",
    "percent": b"GET /api/products/a%2Fb%20c?x=%zz&y=%41%42&%00=1 HTTP/1.1\r\nHost: h\r\n\r\n",
    "absolute_form": b"GET http://example.com/?a=1 HTTP/1.0\r\n\r\n",
    "options": (b"OPTIONS /api/orders HTTP/1.1\r\nHost: h\r\nOrigin: https://a.example\r\n"
                b"Access-Control-Request-Method: POST\r\n\r\n"),
    "upgrade": b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nrest",
    "bad_te_cl": b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "huge_header": b"GET / HTTP/1.1\r\nX: " + b"a" * 5000 + b"\r\n\r\n",
    "garbage": bytes(range(256)),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for i, (name, body) in enumerate(sorted(SEEDS.items())):
        for split in (0, 6):
            with open(os.path.join(OUT, f"{name}_{split}"), "wb") as f:
                f.write(bytes([(split + i) % 256]) + body)


if __name__ == "__main__":
    main()
