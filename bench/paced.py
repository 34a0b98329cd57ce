#!/usr/bin/env python3
"""An open-loop load: POST /verify with one secret at a fixed rate, round-robin over servers, on
one keep-alive connection to each. Request i is due at i / RATE seconds from the start and is
written then, whether or not earlier ones were answered (HTTP/1.1 pipelining: answers come back
in order on each connection), so a slow answer never slows the load. Prints JSON: how many were
sent and answered, each answer's status, how late the writes were, and which requests (by
number: request i was due at i / RATE s) got a 200.

usage: paced.py RATE SECONDS SECRET PORT...
"""
import json
import re
import socket
import sys
import threading
import time

ANSWER_WAIT = 10.0  # seconds to wait for the last answers after the last request
CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


def request(secret):
    body = json.dumps({"api_key": secret}).encode()
    return (b"POST /verify HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


def read_statuses(sock, statuses):
    """Appends the status of each answer read from `sock` until it is closed."""
    data = b""
    while chunk := sock.recv(1 << 16):
        data += chunk
        at = 0
        while (head_end := data.find(b"\r\n\r\n", at)) >= 0:
            head = data[at:head_end]
            end = head_end + 4 + int(CONTENT_LENGTH.search(head).group(1))
            if end > len(data):
                break
            statuses.append(int(head[9:12]))
            at = end
        data = data[at:]


def main():
    rate, seconds, secret = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    ports = [int(p) for p in sys.argv[4:]]
    socks = [socket.create_connection(("127.0.0.1", p)) for p in ports]
    for s in socks:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    answers = [[] for _ in socks]
    readers = [threading.Thread(target=read_statuses, args=(s, a), daemon=True)
               for s, a in zip(socks, answers)]
    for r in readers:
        r.start()
    one = request(secret)
    total = int(rate * seconds)
    sent, lateness, start = 0, [], time.perf_counter()
    while sent < total:
        now = time.perf_counter() - start
        due = min(total, int(now * rate) + 1)
        if due > sent:
            lateness.append(now - sent / rate)
            batch = [0] * len(socks)
            for i in range(sent, due):
                batch[i % len(socks)] += 1
            for s, n in zip(socks, batch):
                if n:
                    s.sendall(one * n)
            sent = due
        time.sleep(max(0.0, sent / rate - (time.perf_counter() - start)))
    elapsed = time.perf_counter() - start
    deadline = time.time() + ANSWER_WAIT
    while sum(map(len, answers)) < sent and time.time() < deadline:
        time.sleep(0.01)
    for s in socks:
        s.shutdown(socket.SHUT_RDWR)
    for r in readers:
        r.join(timeout=5)
    for s in socks:
        s.close()
    # Request i went to server i % n, as the (i // n)-th there: its answer is the one there.
    status = [0] * sent  # 0: never answered
    for server, got in enumerate(answers):
        for k, answer in enumerate(got):
            status[server + k * len(socks)] = answer
    lateness.sort()
    print(json.dumps({
        "rate": rate, "seconds": seconds, "servers": len(socks), "sent": sent,
        "answered": sum(map(len, answers)),
        "achieved_rate": sent / elapsed if elapsed else 0.0,
        "late_ms": {"p99": lateness[int(0.99 * (len(lateness) - 1))] * 1000,
                    "max": lateness[-1] * 1000},
        "statuses": {str(s): status.count(s) for s in sorted(set(status))},
        "accepted": [i for i, s in enumerate(status) if s == 200],
    }))


if __name__ == "__main__":
    main()
