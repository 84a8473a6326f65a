"""An HTTP/1.1 keep-alive server on the loop under test, loaded by ``wrk`` in its own process.

The server is a minimal asyncio Protocol: it splits what it reads at the blank line ending
each request (wrk sends GETs without a body), checks the request line and answers each
request with the same small fixed response.  ``wrk -t1 -c10`` (one thread, 10 keep-alive
connections) is held back by ``sh`` until the timed part starts; the timed part ends when the
server has answered N requests, and wrk is then stopped (SIGINT) and must report no socket
errors and no non-2xx responses; a small Lua script makes wrk compare every response's
status and body, and the requests wrk completed must match those the server answered (less
at most one in flight per connection).  One op is one request answered: ops/s is requests/s.
"""

import asyncio
import shutil
import time

from .. import loadgen
from . import WrongResult, check, register
from ._netbase import CONNS, Counter, NetWorkload, run_until

BODY = b"Hello, World!\n"
HEADERS = {"Content-Type": "text/plain", "Content-Length": str(len(BODY))}
RESPONSE = (b"HTTP/1.1 200 OK\r\n"
            + b"".join(f"{k}: {v}\r\n".encode() for k, v in HEADERS.items())
            + b"\r\n" + BODY)
END = b"\r\n\r\n"
REQUEST_LINE = b"GET / HTTP/1.1\r\n"
SETUP_TIMEOUT = 30.0
RUN_TIMEOUT = 60.0
#: wrk's own limit, far beyond any run: it is stopped as soon as the server is done.
WRK_DURATION = 90


class HttpProtocol(asyncio.Protocol):
    """One instance per connection."""

    __slots__ = ("state", "transport", "buf")

    def __init__(self, state):
        self.state = state
        self.transport = None
        self.buf = b""

    def connection_made(self, transport):
        self.transport = transport
        self.state.counter.open(transport)

    def data_received(self, data):
        buf = self.buf + data if self.buf else data
        count = buf.count(END)
        if not count:
            self.buf = buf
            return
        end = buf.rfind(END) + 4
        self.buf = buf[end:]
        state = self.state
        if buf.count(REQUEST_LINE, 0, end) != count:
            state.bad += 1
        self.transport.write(RESPONSE * count if count > 1 else RESPONSE)
        state.requests += count
        if state.requests >= state.target and not state.done.done():
            state.done.set_result(None)

    def eof_received(self):
        return None

    def connection_lost(self, exc):
        self.state.counter.close(self.transport)


class State:
    def __init__(self, loop, target):
        self.target = target
        self.requests = 0
        self.bad = 0
        self.done = loop.create_future()
        self.counter = Counter(loop, CONNS)


@register
class HttpWrk(NetWorkload):
    name = "http_wrk"
    doc = (f"HTTP/1.1 keep-alive GETs answered by a minimal asyncio Protocol server, driven by "
           f"wrk -t1 -c{CONNS} in its own process; no socket errors or non-2xx allowed")
    unit = "request"
    quick = 20_000
    full = 100_000

    @classmethod
    def unavailable(cls):
        for tool in ("wrk", "sh"):
            if shutil.which(tool) is None:
                return f"{tool} not found on PATH (Debian: apt-get install -y wrk)"
        return None

    def setup(self, loop, n):
        self.n = n
        self.state = State(loop, n)
        self.counter = self.state.counter
        self.server = loop.run_until_complete(loop.create_server(
            lambda: HttpProtocol(self.state), "127.0.0.1", 0))
        host, port = self.server.sockets[0].getsockname()[:2]
        self.client = loadgen.Wrk(f"http://{host}:{port}/", CONNS, threads=1,
                                  duration=WRK_DURATION, expect_body=BODY,
                                  expect_headers=HEADERS)

    def run(self, loop, n):
        cpu0, t0 = time.process_time(), time.perf_counter()
        self.client.go()
        state = self.state
        run_until(loop, state.done, RUN_TIMEOUT, f"answering {n} requests",
                  progress=lambda: state.requests)
        self.seconds = time.perf_counter() - t0
        self.cpu = time.process_time() - cpu0
        return self.state.requests

    def verify(self, loop):
        out = self.client.stop()
        stats = loadgen.parse_wrk(out)
        cpu = self.client.cpu
        self.extra = {"client_cpu": cpu, "client_util": cpu / self.seconds if cpu else None,
                      "server_seconds": self.seconds, "server_cpu": self.cpu,
                      "server_util": self.cpu / self.seconds,
                      "wrk_requests": stats["requests"]}
        if stats["requests"] is None:
            tail = " | ".join(out.strip().splitlines()[-3:])
            raise WrongResult(f"no request count in wrk's output: {tail or '(nothing)'}")
        errors = {k: stats[k] for k in ("connect", "read", "write", "timeout") if stats[k]}
        check(not errors, "wrk: socket errors " + ", ".join(f"{k} {v}" for k, v in
                                                             errors.items()))
        check(not stats["non2xx"], f"wrk: {stats['non2xx']} non-2xx/3xx responses")
        check(not self.state.bad, f"server: {self.state.bad} reads with a bad request line")
        check(stats["seen"] is not None, "wrk did not run its checking script")
        check(not stats["bad"], f"wrk: {stats['bad']} of {stats['seen']} responses were not "
                                "200 with the expected headers and body")
        # wrk has one request in flight per connection and reads every response the server
        # wrote; more responses than the server answered means some arrived twice.
        answered = self.state.requests
        check(answered - CONNS <= stats["requests"] <= answered,
              f"wrk completed {stats['requests']} requests, the server answered {answered}")
