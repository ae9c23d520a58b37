#!/usr/bin/env python3
"""A flood beside a well-behaved producer, against any running tally daemon (any build):

    scripts/flood-check.py SOCKET [FLOODERS] [SECONDS] [GOOD_EVENTS] [RATE]

FLOODERS connections (default 200) push the same 1,000 lines of meter m0 as fast as the daemon
takes them and never read their answers; beside them one producer sends GOOD_EVENTS lines
(default 8,000) at RATE events/s (default 1,000) and reads every answer. Prints the producer's
largest ack latency per half second, then p50, p99 and max. `tally bench ingest --flood` measures
the same with its own client; this script exists to measure builds that do not have it.
"""
import select
import socket
import sys
import threading
import time

path = sys.argv[1]
flooders = int(sys.argv[2]) if len(sys.argv) > 2 else 200
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 12
good_events = int(sys.argv[4]) if len(sys.argv) > 4 else 8000
rate = float(sys.argv[5]) if len(sys.argv) > 5 else 1000.0


def flood():
    block = b"".join(b'{"id":"flood-%d","customer":"flood-%d","meter":"m0"}\n' % (i, i % 100) for i in range(1000))
    sockets = []
    for _ in range(flooders):
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.setblocking(False)
        sockets.append([s, 0])
    end = time.time() + seconds
    sent = 0
    while time.time() < end:
        progressed = False
        for entry in sockets:
            try:
                count = entry[0].send(block[entry[1]:])
                entry[1] = (entry[1] + count) % len(block)
                sent += count
                progressed = True
            except BlockingIOError:
                pass
        if not progressed:
            select.select([], [e[0] for e in sockets], [], 0.01)
    for entry in sockets:
        entry[0].close()
    print("flood: %d MiB sent" % (sent >> 20))


flood_thread = threading.Thread(target=flood)
flood_thread.start()
time.sleep(1)

good = socket.socket(socket.AF_UNIX)
good.connect(path)
sent_at = {}
latencies = []


def read_answers():
    answers = good.makefile("rb")
    for index, _ in enumerate(answers):
        latencies.append((sent_at[index], time.time() - sent_at[index]))
        if index + 1 == good_events:
            break


reader = threading.Thread(target=read_answers)
reader.start()
start = time.time()
for index in range(good_events):
    delay = start + index / rate - time.time()
    if delay > 0:
        time.sleep(delay)
    sent_at[index] = time.time()
    good.sendall(b'{"id":"good-%d-%f","customer":"good","meter":"m0"}\n' % (index, start))
reader.join()
flood_thread.join()

windows = {}
for at, latency in latencies:
    key = int((at - start) * 2)
    windows[key] = max(windows.get(key, 0), latency)
print("max ms per half second: " + " ".join("%.0f" % (windows[k] * 1000) for k in sorted(windows)))
ordered = sorted(latency for _, latency in latencies)
print("p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (ordered[len(ordered) // 2] * 1000,
                                                ordered[int(len(ordered) * 0.99)] * 1000, ordered[-1] * 1000))
