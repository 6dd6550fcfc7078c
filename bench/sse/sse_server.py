#!/usr/bin/env python3
"""The SSE benchmark's stream server (bench/sse/run.py starts it as a child process, so that the
benchmark's own memory and the rendering stay out of the daemon's figures).

Renders N play events (seeded; event times in order over 20 s) as one text/event-stream body in
memory, `data: {json}` and a blank line each, writes the successful plays per (window start ms,
device, title, country) to --counts as JSON (and, with --records, the events' JSON one per line
for bench_raw_parse), prints the stream's URL on stdout, then serves the
body once per connection on 127.0.0.1: the answer's header, the whole body in 1 MiB writes as
fast as the socket takes them, then close (EOF, the clean end of a body without length). After
each connection it prints one line `sent <first byte> <last byte>` (time.monotonic()). Ends when
stdin closes.
"""

import argparse
import collections
import json
import random
import socket
import sys
import threading
import time

BASE_MS = 1515445354000
SPAN_MS = 20_000
DEVICES = ["xbox_one", "ps4", "roku", "apple_tv", "android", "ios"]
TITLES = ["narcos", "dark", "ozark", "mindhunter", "the crown", "bojack"]
COUNTRIES = ["UK", "US", "BR", "DE", "FR", "IN"]
SEVS = ["success", "success", "success", "error"]


def render(n, seed):
    """The stream body and the expected counts {(window start ms, device, title, country): n}."""
    rng = random.Random(seed)
    devices = rng.choices(DEVICES, k=n)
    titles = rng.choices(TITLES, k=n)
    countries = rng.choices(COUNTRIES, k=n)
    sevs = rng.choices(SEVS, k=n)
    parts = []
    counts = collections.Counter()
    for i in range(n):
        t = BASE_MS + i * SPAN_MS // n
        d, ti, c, s = devices[i], titles[i], countries[i], sevs[i]
        parts.append(f'data: {{"device":"{d}","sev":"{s}","title":"{ti}","country":"{c}",'
                     f'"time":{t},"seq":{i}}}\n\n')
        if s == "success":
            counts[(t - t % 1000, d, ti, c)] += 1
    return "".join(parts).encode(), counts


def serve(sock, body):
    view = memoryview(body)
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                request += chunk
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n")
            first = time.monotonic()
            step = 1 << 20
            for off in range(0, len(view), step):
                conn.sendall(view[off:off + step])
            print(f"sent {first} {time.monotonic()}", flush=True)
        except OSError as e:
            print(f"error {e}", flush=True)
        finally:
            conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--counts", required=True)
    parser.add_argument("--records", help="also write the events' JSON here, one per line")
    args = parser.parse_args()
    body, counts = render(args.events, args.seed)
    if args.records:
        with open(args.records, "wb") as f:
            f.write(body.replace(b"data: ", b"").replace(b"\n\n", b"\n"))
    with open(args.counts, "w") as f:
        json.dump({"bytes": len(body),
                   "counts": [[ts, d, t, c, n] for (ts, d, t, c), n in counts.items()]}, f)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    threading.Thread(target=serve, args=(sock, body), daemon=True).start()
    print(f"http://127.0.0.1:{sock.getsockname()[1]}/plays", flush=True)
    sys.stdin.read()  # until the benchmark closes it
    sock.close()


if __name__ == "__main__":
    main()
