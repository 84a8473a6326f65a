"""Shared parts of the network workloads (net.py, http.py): not a workload module itself."""

import asyncio
import time

from .. import loadgen
from . import Workload, WrongResult

#: Concurrent connections (or UDP sockets) of every load generator: enough that the server,
#: not one connection's round trip, sets the pace.
CONNS = 10


class Counter:
    """Connections opened and closed on the server, with futures for 'all open'/'all closed'."""

    def __init__(self, loop, expected):
        self.expected = expected
        self.opened = 0
        self.closed = 0
        self.errors = []
        self.all_open = loop.create_future()
        self.all_closed = loop.create_future()
        self.transports = set()

    def open(self, transport=None):
        self.opened += 1
        if transport is not None:
            self.transports.add(transport)
        if self.opened == self.expected and not self.all_open.done():
            self.all_open.set_result(None)

    def close(self, transport=None):
        self.closed += 1
        self.transports.discard(transport)
        if self.closed == self.expected and not self.all_closed.done():
            self.all_closed.set_result(None)

    def error(self, what):
        self.errors.append(what)


def run_until(loop, fut, timeout, what, progress=None, idle=3.0, alive=None):
    """Run the loop until fut is done, at most timeout seconds; with progress (a callable
    returning a number that grows while things go well), also fail when it stands still for
    idle seconds; with alive (a callable returning None, or why the other side is gone, e.g.
    ``Client.exited``), fail as soon as it gives a reason.  Loop timers: a hung loop is left
    to the runner's own timeout."""
    start = loop.time()
    last = [progress() if progress else None, start]
    every = 0.5 if progress else 0.1 if alive else timeout
    failure = []

    def fail(exc):
        # A Task refuses set_exception(): cancel it and raise the reason once it is done.
        if hasattr(fut, "get_coro"):
            failure.append(exc)
            fut.cancel()
        else:
            fut.set_exception(exc)

    def check_on():
        if fut.done():
            return
        if alive is not None:
            why = alive()
            if why:
                fail(WrongResult(f"{what}: {why}"))
                return
        now = loop.time()
        if progress is not None:
            value = progress()
            if value != last[0]:
                last[:] = [value, now]
            elif now - last[1] > idle:
                fail(WrongResult(
                    f"{what}: stalled at {value} for {now - last[1]:.1f} s (data lost?)"))
                return
        if now - start >= timeout - 0.05:
            fail(WrongResult(f"{what}: not done after {timeout:.0f} s"))
            return
        handles[0] = loop.call_later(min(every, max(0.0, start + timeout - now)), check_on)

    handles = [loop.call_later(every, check_on)]
    try:
        return loop.run_until_complete(fut)
    except asyncio.CancelledError:
        if failure:
            raise failure[0] from None
        raise
    finally:
        handles[0].cancel()


class NetWorkload(Workload):
    """Common teardown: client process, server, tracked transports, temp dir."""

    client = None
    server = None
    counter = None
    tmpdir = None
    extra = None
    #: Safety net for the timed part of run(); the client's own 3 s stall detection
    #: normally ends it first.
    run_timeout = loadgen.DEADLINE + 15.0

    def run(self, loop, n):
        """Release the client and run until the server saw every connection close (the
        client closes only once it has checked every echo); ``run_timeout`` bounds it."""
        cpu0, t0 = time.process_time(), time.perf_counter()
        self.client.go()
        run_until(loop, self.counter.all_closed, self.run_timeout, "the echo run")
        self.seconds = time.perf_counter() - t0
        self.cpu = time.process_time() - cpu0
        return n

    def close_server(self, loop):
        if self.counter is not None:
            for t in list(self.counter.transports):
                t.abort()
        if self.server is not None:
            self.server.close()
            try:
                run_until(loop, loop.create_task(self.server.wait_closed()), 5.0,
                          "server.wait_closed()")
            finally:
                self.server = None

    def teardown(self, loop):
        try:
            if self.client is not None:
                self.client.close()
            self.close_server(loop)
        finally:
            if self.tmpdir is not None:
                self.tmpdir.cleanup()
