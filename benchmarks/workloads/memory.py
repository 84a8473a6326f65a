"""Memory: the server process's resident memory per idle TCP connection.

A plain asyncio Protocol server (it keeps its transport, as any real server does) runs on the
loop under test; ``benchmarks/loadgen.py idle``, in another process, opens N loopback
connections to it in batches and leaves them idle.  The worker reads its own resident set
size (``/proc/self/statm``) before the first connection and again once all N are accepted
and open and the loop has settled; the result is the growth divided by N, in bytes per
connection (lower is better).  Kernel socket buffers are not part of a process's RSS: this is
what the loop and its Python objects (transport, protocol, socket, watcher, buffers) cost.

Checked: the server saw exactly N connections made and none lost, received no byte, and the
client found all N still open and silent; then the client closes them and the server must
see all N closed.  The timed part (what ns/op would be) is accepting the N connections; the
runner shows bytes per connection instead and keeps the time in its JSON only.
"""

import asyncio
import gc
import os

from .. import loadgen
from . import Metric, check, register
from ._netbase import Counter, NetWorkload, run_until

SETUP_TIMEOUT = 30.0
#: Connections asked of the client at a time.  The worker runs its loop until it has accepted
#: each batch before asking for the next, so the listen backlog (BACKLOG >= BATCH) never
#: overflows: an overflowing backlog drops SYNs and a client waits a second to retry.
BATCH = 250
BACKLOG = 1024
#: Descriptors beyond the N connections: the listener, pipes, the loop's own, the runtime's.
SPARE_FDS = 200
#: How long the loop runs with every connection open before RSS is read again.
SETTLE = 0.2
STATM = "/proc/self/statm"


def rss_bytes():
    with open(STATM) as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def nofile_limits():
    try:
        import resource
    except ImportError:
        return None
    return resource.getrlimit(resource.RLIMIT_NOFILE)


class IdleProtocol(asyncio.Protocol):
    """Keeps its transport and waits; any byte from the client is an error."""

    __slots__ = ("counter", "transport")

    def __init__(self, counter):
        self.counter = counter
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.counter.open(transport)

    def data_received(self, data):
        self.counter.error(f"{len(data)} byte(s) received on an idle connection")

    def eof_received(self):
        return None  # close

    def connection_lost(self, exc):
        self.counter.close(self.transport)


@register
class IdleTcpRss(NetWorkload):
    name = "idle_tcp_rss"
    doc = ("resident memory of the server process per idle loopback TCP connection "
           "(create_server + a Protocol that keeps its transport), N connections held open "
           "by another process")
    unit = "connection"
    metric = Metric("RSS per idle connection", "bytes/conn", lower_is_better=True)
    quick = 2_000
    full = 10_000
    # The warm-up's connections are gone when the measured run starts, but the memory they
    # used may stay with the process and be reused: keep it a small share of the measured
    # growth, also on PyPy (whose default warm-up is a whole run).
    warmup_fraction = 0.1

    @classmethod
    def unavailable(cls):
        if not os.path.exists(STATM):
            return f"no {STATM} to read the resident set size from (Linux only)"
        if nofile_limits() is None:
            return "no resource module to raise the descriptor limit"
        return None

    @classmethod
    def unavailable_at(cls, n):
        why = cls.unavailable()
        if why:
            return why
        import resource

        hard = nofile_limits()[1]
        if hard != resource.RLIM_INFINITY and hard < n + SPARE_FDS:
            return (f"the descriptor limit (RLIMIT_NOFILE hard limit {hard}) is below the "
                    f"{n + SPARE_FDS} this size needs (raise it, e.g. ulimit -Hn, or use "
                    "--scale)")
        return None

    def setup(self, loop, n):
        self.n = n
        soft = loadgen.raise_nofile(n + SPARE_FDS)
        check(soft is None or soft >= n + SPARE_FDS,
              f"could not raise RLIMIT_NOFILE to {n + SPARE_FDS} (soft limit {soft})")
        self.counter = Counter(loop, n)
        self.server = loop.run_until_complete(loop.create_server(
            lambda: IdleProtocol(self.counter), "127.0.0.1", 0, backlog=BACKLOG))
        self.client = loadgen.Client("idle", conns=n,
                                     tcp=self.server.sockets[0].getsockname()[:2])
        self.client.wait_ready(SETUP_TIMEOUT)

    def run(self, loop, n):
        counter = self.counter
        gc.collect()
        before = rss_bytes()
        half = None  # (connections, RSS) once half of them are open: the slope, in extra
        while counter.opened < n:
            if half is None and counter.opened >= n // 2 > 0:
                gc.collect()
                half = (counter.opened, rss_bytes())
            # Counter resolves all_open when `expected` connections are open: one per batch.
            target = counter.expected = min(n, counter.opened + BATCH)
            counter.all_open = loop.create_future()
            self.client.send(f"open {target - counter.opened}")
            run_until(loop, counter.all_open, SETUP_TIMEOUT, f"accepting {target} connections",
                      progress=lambda: counter.opened, alive=self.client.exited)
            answer = loadgen.read_line(self.client.proc, SETUP_TIMEOUT, "load generator")
            check(answer.strip() == f"opened {target}",
                  f"asked for {target} connections in all, the client said {answer.strip()!r}")
        # Let the loop settle (deferred callbacks, buffers it allocates lazily), then collect
        # garbage so that only what the connections hold remains.
        loop.run_until_complete(asyncio.sleep(SETTLE))
        gc.collect()
        after = rss_bytes()
        self.value = (after - before) / n
        self.extra = {"rss_before": before, "rss_after": after}
        if half is not None and half[0] < n:
            # Growth per connection over the second half only: without what the first
            # connections cost once (code paths run for the first time, a JIT's traces).
            self.extra["bytes_per_conn_second_half"] = (after - half[1]) / (n - half[0])
        return n

    def verify(self, loop):
        counter = self.counter
        check(not counter.errors, f"server: {'; '.join(counter.errors[:3])}")
        check(counter.opened == self.n and counter.closed == 0,
              f"the server saw {counter.opened} connections made and {counter.closed} lost "
              f"while {self.n} were held open")
        import json

        state = json.loads(self.client.command("check"))
        check(state["ok"], f"client: {state['error']}")
        check(state["open"] == self.n, f"the client holds {state['open']} of {self.n} "
                                       "connections")
        answer = self.client.command("close")
        check(answer == f"closed {self.n}", f"the client answered {answer!r} to close")
        run_until(loop, counter.all_closed, SETUP_TIMEOUT,
                  f"seeing the {self.n} connections closed", progress=lambda: counter.closed)
        check(counter.closed == self.n and not counter.errors,
              f"the server saw {counter.closed} of {self.n} connections closed"
              + (f"; {'; '.join(counter.errors[:3])}" if counter.errors else ""))
