"""What does a clean controllable link cost? Added latency and CPU of ``NetLink`` (issue 39).

A request/answer client (small messages, like an ERP's queries to its database) runs at
--rate round trips per second over --connections connections for --seconds, once straight
to an echo server and once through a ``NetLink`` with a clean shape, alternated twice; the
link runs in a process of its own so its CPU is read by the OS alone. Default rate: 300 round
trips/s -- the order of what the sandbox ERP sends its database under the month-end profile
(12 users, each flow a handful of statements).

Last line: ``link added latency p50: X ms (goal <= 1 ms) PASS|FAIL``; the p95 and the link's
CPU in % of one core are printed above it.
Usage: .venv/bin/python benchmarks/netlink_overhead.py [--rate 300] [--seconds 5]
"""

from __future__ import annotations

import argparse
import socket
import socketserver
import statistics
import subprocess
import sys
import threading
import time

import psutil

GOAL_MS = 1.0
LINK = """
import sys, time
from ledgerdrill.platforms.sandbox.netlink import NetLink
link = NetLink("bench", ("127.0.0.1", int(sys.argv[1]))).start()
print(link.port, flush=True)
time.sleep(3600)
"""


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


def run_client(port: int, rate: float, seconds: float, connections: int) -> list[float]:
    """Round-trip times (s) of --rate round trips per second spread over the connections."""
    times: list[float] = []
    lock = threading.Lock()
    per_connection = rate / connections

    def one(index: int) -> None:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.perf_counter() + index / rate  # staggered
        n = 0
        while (due := start + n / per_connection) < start + seconds:
            time.sleep(max(0.0, due - time.perf_counter()))
            began = time.perf_counter()
            sock.sendall(b"Q" * 200)
            got = 0
            while got < 200:
                got += len(sock.recv(65536))
            with lock:
                times.append(time.perf_counter() - began)
            n += 1
        sock.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    echo_port = int(server.server_address[1])
    link = subprocess.Popen([sys.executable, "-c", LINK, str(echo_port)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert link.stdout is not None
        link_port = int(link.stdout.readline())
        proc = psutil.Process(link.pid)
        direct: list[float] = []
        through: list[float] = []
        cpu: list[float] = []
        run_client(link_port, args.rate, 0.5, args.connections)  # warm-up, not counted
        for _ in range(2):
            direct += run_client(echo_port, args.rate, args.seconds, args.connections)
            before, t0 = proc.cpu_times(), time.monotonic()
            through += run_client(link_port, args.rate, args.seconds, args.connections)
            after, elapsed = proc.cpu_times(), time.monotonic() - t0
            cpu.append((after.user + after.system - before.user - before.system) / elapsed * 100)
    finally:
        link.terminate()
        link.wait(10)
        server.shutdown()
    added_p50 = statistics.median(through) * 1000 - statistics.median(direct) * 1000
    added_p95 = pct(through, 0.95) - pct(direct, 0.95)
    print(f"{len(direct)} round trips straight, {len(through)} through the link, "
          f"{args.rate:g}/s over {args.connections} connections")  # fmt: skip
    for label, times in (("straight", direct), ("through the link", through)):
        print(f"{label + ':':17} p50 {statistics.median(times) * 1000:.3f} ms,"
              f" p95 {pct(times, 0.95):.3f} ms")  # fmt: skip
    print(f"link added latency p95: {added_p95:.3f} ms")
    print(f"link CPU at {args.rate:g} round trips/s: {statistics.fmean(cpu):.1f}% of one core "
          f"({', '.join(f'{c:.1f}' for c in cpu)})")  # fmt: skip
    verdict = "PASS" if added_p50 <= GOAL_MS else "FAIL"
    print(f"link added latency p50: {added_p50:.3f} ms (goal <= {GOAL_MS:g} ms) {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
