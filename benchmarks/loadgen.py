"""Load generators for the network workloads, each in a process of its own.

The network workloads (``benchmarks/workloads/net.py``, ``http.py``) run a server on the loop
under test inside the measured worker process; the client that loads it must not share that
process (or its GIL).  This module is both sides of that arrangement:

* run as a script, it is the client: plain non-blocking sockets multiplexed with
  ``select.epoll`` (no event loop, no C extension), several concurrent connections, every echoed
  byte compared with what was sent, message counts exact, bounded in count and in time::

      python benchmarks/loadgen.py stream --tcp 127.0.0.1:PORT --conns 10 --messages N --size S
      python benchmarks/loadgen.py stream --unix PATH ...
      python benchmarks/loadgen.py udp --tcp 127.0.0.1:PORT --control 127.0.0.1:PORT ...

  It connects, prints ``ready``, waits for ``go`` on stdin (so process start and connection
  set-up are not timed), runs, then prints one JSON line: ok, error, messages, bytes, and its
  own CPU and wall time over the loaded phase.  stdin reaching EOF (the parent died) ends it.

* imported (``benchmarks.loadgen``), it gives the workloads ``Client`` and ``Wrk`` to start,
  release and collect those processes.

Only the standard library; CPython 3.9+ and PyPy 3.9.
"""

import json
import os
import select
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

#: A connection or datagram socket without progress for this long fails the run: the loop
#: dropped data (or hung).  The runner's own hang detection needs at least 5 s.
IDLE_TIMEOUT = 3.0
#: Hard upper bound on the loaded phase of one client, whatever the sizes.
DEADLINE = 120.0

#: The name in the TLS workloads' throwaway certificate, checked by the client.
TLS_HOSTNAME = "localhost"

CONNS_DEFAULT = 10

HEADER = struct.Struct("<IIQ")  # connection, sequence number, magic: 16 bytes
MAGIC = 0x6563686F6C6F6F70     # b"echoloop"


# ---------------------------------------------------------------------------------------------
# the client process


class Failed(Exception):
    pass


#: Distinct messages per connection, sent in turn: consecutive messages always differ, so a
#: duplicated, lost or misplaced chunk shows up as a wrong byte, and each connection's
#: messages carry its number, so a chunk delivered to the wrong connection does too.  Built
#: before the run: making a message costs the client nothing while it is timed.
VARIANTS_BYTES = 8 << 20


def build_messages(size, conns):
    """messages[c][k] for connection c, k = sequence number % len(messages[c])."""
    per_conn = max(2, min(64, VARIANTS_BYTES // (size * conns)))
    # Random bytes, so that a loop that mixes up chunks cannot produce a matching echo.
    pattern = os.urandom(size + 65536)
    out = []
    for c in range(conns):
        msgs = []
        for k in range(per_conn):
            head = HEADER.pack(c, k, MAGIC)
            off = (k * 7919 + c * 104729) % (len(pattern) - size)
            msgs.append((head + pattern[off:off + max(0, size - len(head))])[:size])
        out.append(msgs)
    return out


def split(total, parts):
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def parse_addr(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def wait_for_go():
    line = sys.stdin.readline()
    if line.strip() != "go":
        raise SystemExit(0)  # the parent went away before releasing us


class Poller:
    """epoll (poll where there is none), with the few operations the clients need; cheaper
    per event than ``selectors``, which matters in a client that must outrun the server."""

    def __init__(self):
        if hasattr(select, "epoll"):
            self._p = select.epoll()
            self.IN, self.OUT = select.EPOLLIN, select.EPOLLOUT
            self.scale = 1.0
        else:
            self._p = select.poll()
            self.IN, self.OUT = select.POLLIN, select.POLLOUT
            self.scale = 1000.0  # poll() wants milliseconds
        self.register = self._p.register
        self.modify = self._p.modify
        self.unregister = self._p.unregister
        self.close = getattr(self._p, "close", lambda: None)

    def poll(self, timeout):
        return self._p.poll(timeout * self.scale)


def stall(why, since, done, total, stuck):
    return Failed(f"{why} for {since:.1f} s with {done} of {total} messages echoed; stuck: "
                  + "; ".join(stuck[:4]) + (" ..." if len(stuck) > 4 else ""))


def stream_echo(socks, per_conn, size, idle, deadline, messages, tls=False):
    """Ping-pong on every connection: send a message, read its echo back, compare, repeat.

    Returns (messages, bytes).  Raises Failed on a wrong byte, extra bytes, an early EOF or a
    stall.  After its last message each connection shuts its write side down and must then
    read EOF: the server saw every byte and sent nothing more.

    With ``tls`` the sockets are ``ssl.SSLSocket``s, handshake done: "would block" is then
    SSLWantRead/WriteError, a write that would block must be retried with the same bytes,
    decrypted bytes can wait inside the SSL object where epoll cannot see them (``pending()``),
    and the end of a connection is a close_notify each way (``unwrap``) rather than a TCP
    half-close; a TCP EOF without the server's close_notify fails the run.
    """
    if tls:
        import ssl

        want_read, want_write = ssl.SSLWantReadError, ssl.SSLWantWriteError
        # What recv raises for the peer's close_notify once ours has been sent.
        zero_return = ssl.SSLZeroReturnError
    else:
        want_read = want_write = zero_return = BlockingIOError
    n = len(socks)
    poller = Poller()
    IN, OUT = poller.IN, poller.OUT
    index = {}
    seq = [0] * n          # messages completed
    pos = [0] * n          # bytes of the current echo received
    expect = [b""] * n     # the message in flight
    pending = [None] * n   # unsent tail of the message in flight
    finished = [False] * n  # write side shut down, waiting for EOF
    done_msgs = 0
    active = n

    def start(c):
        s = socks[c]
        if seq[c] >= per_conn[c]:
            finished[c] = True
            if not tls:
                s.shutdown(socket.SHUT_WR)
                return
            try:
                # Sends our close_notify, then tries to read the server's: usually not there
                # yet (SSLWantReadError, recv below gets it as SSLZeroReturnError); if it is,
                # unwrap returns and s is a plain socket again, which must then read EOF.
                s.unwrap()
            except want_read:
                pass
            except want_write:
                raise Failed(f"connection {c}: no room to send close_notify after the last "
                             "echo") from None
            return
        variants = messages[c]
        msg = expect[c] = variants[seq[c] % len(variants)]
        pos[c] = 0
        try:
            sent = s.send(msg)
        except want_write:
            sent = 0
        if sent < size:
            pending[c] = memoryview(msg)[sent:]
            poller.modify(s.fileno(), IN | OUT)

    for c, s in enumerate(socks):
        s.setblocking(False)
        index[s.fileno()] = c
        poller.register(s.fileno(), IN)
    for c in range(n):
        start(c)

    t_start = time.monotonic()
    last_progress = t_start
    poll = poller.poll
    while active:
        events = poll(0.1)
        if not events:
            now = time.monotonic()
            if now - last_progress > idle or now - t_start > deadline:
                stuck = [f"connection {c}: {seq[c]}/{per_conn[c]} messages, {pos[c]}/{size} "
                         "bytes of the next echo" if not finished[c] else
                         f"connection {c}: no EOF after its last echo"
                         for c in range(n) if socks[c].fileno() >= 0]
                raise stall("no progress" if now - last_progress > idle else "deadline",
                            now - last_progress, done_msgs, sum(per_conn), stuck)
            continue
        last_progress = time.monotonic()
        for fd, ev in events:
            c = index[fd]
            s = socks[c]
            if ev & OUT:
                rest = pending[c]
                try:
                    sent = s.send(rest)
                except want_write:
                    sent = 0  # TLS: retry later with the same bytes
                if sent < len(rest):
                    pending[c] = rest[sent:]
                else:
                    pending[c] = None
                    poller.modify(fd, IN)
                if ev == OUT:
                    continue
            while True:  # more than once only for TLS bytes already decrypted (pending())
                if finished[c]:
                    try:
                        data = s.recv(65536)
                    except want_read:
                        break
                    except zero_return:  # TLS: the server's close_notify, the clean end
                        data = b""
                    except OSError as exc:  # TLS: EOF without close_notify, a bad record
                        raise Failed(f"connection {c}: {exc!r} after its {per_conn[c]} "
                                     "echoed messages") from None
                    if data:
                        raise Failed(f"connection {c}: {len(data)} unexpected byte(s) after "
                                     f"its {per_conn[c]} echoed messages")
                    poller.unregister(fd)
                    s.close()
                    active -= 1
                    break
                p = pos[c]
                try:
                    data = s.recv(size - p)
                except want_read:
                    break
                k = len(data)
                if not k:
                    raise Failed(f"connection {c}: EOF from the server after {seq[c]} of "
                                 f"{per_conn[c]} messages and {p} bytes of the next echo")
                exp = expect[c]
                if not (data == exp if k == size else data == exp[p:p + k]):
                    at = next(i for i in range(k) if data[i] != exp[p + i])
                    raise Failed(f"connection {c}, message {seq[c]}: echoed byte {p + at} "
                                 f"differs (got {data[at]:#04x}, sent {exp[p + at]:#04x})")
                p += k
                if p < size:
                    pos[c] = p
                else:
                    seq[c] += 1
                    done_msgs += 1
                    start(c)
                if not tls or not s.pending():
                    break
    return done_msgs, done_msgs * size


def udp_echo(socks, per_conn, size, idle, deadline, messages):
    """Ping-pong of datagrams on every (connected) UDP socket; each echo compared whole."""
    n = len(socks)
    poller = Poller()
    index = {}
    seq = [0] * n
    expect = [b""] * n
    done_msgs = 0
    active = 0
    for c, s in enumerate(socks):
        s.setblocking(False)
        if per_conn[c]:
            index[s.fileno()] = c
            poller.register(s.fileno(), poller.IN)
            active += 1
            msg = expect[c] = messages[c][0]
            s.send(msg)
    t_start = time.monotonic()
    last_progress = t_start
    poll = poller.poll
    while active:
        events = poll(0.1)
        if not events:
            now = time.monotonic()
            if now - last_progress > idle or now - t_start > deadline:
                stuck = [f"socket {c}: {seq[c]}/{per_conn[c]} datagrams" for c in range(n)
                         if seq[c] < per_conn[c]]
                raise stall(("no progress" if now - last_progress > idle else "deadline")
                            + " (a datagram or its echo was lost)", now - last_progress,
                            done_msgs, sum(per_conn), stuck)
            continue
        last_progress = time.monotonic()
        for fd, _ in events:
            c = index[fd]
            s = socks[c]
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            if data != expect[c]:
                raise Failed(f"socket {c}, datagram {seq[c]}: the echo differs from what was "
                             f"sent ({len(data)} bytes back, {size} sent)")
            seq[c] += 1
            done_msgs += 1
            if seq[c] < per_conn[c]:
                variants = messages[c]
                msg = expect[c] = variants[seq[c] % len(variants)]
                s.send(msg)
            else:
                poller.unregister(fd)
                active -= 1
    return done_msgs, done_msgs * size


def connect_stream(args, tls_context=None):
    if args.unix:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(args.unix)
    else:
        s = socket.create_connection(parse_addr(args.tcp), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls_context is not None:
            # Handshake now, blocking (the server's loop is running): set-up, not timed.
            s = tls_context.wrap_socket(s, server_hostname=TLS_HOSTNAME,
                                        suppress_ragged_eofs=False)
        s.settimeout(None)
    return s


def tls_client_context(cafile):
    import ssl

    ctx = ssl.create_default_context(cafile=cafile)  # verifies the chain and the name
    return ctx


def cpu_times():
    """(user, system) CPU seconds of this process, finer than os.times()' clock ticks."""
    try:
        import resource
    except ImportError:
        t = os.times()
        return t.user, t.system
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime, u.ru_stime


def client_main(args):
    result = {"ok": False, "error": None, "messages": 0, "bytes": 0}
    socks = []
    control = None
    try:
        per_conn = split(args.messages, args.conns)
        messages = build_messages(args.size, args.conns)
        if args.mode in ("stream", "tls"):
            ctx = tls_client_context(args.cafile) if args.mode == "tls" else None
            socks = [connect_stream(args, ctx) for _ in range(args.conns)]
        else:
            host, port = parse_addr(args.tcp)
            for _ in range(args.conns):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.connect((host, port))
                socks.append(s)
            # The end of the run is signalled by closing this connection.
            control = socket.create_connection(parse_addr(args.control), timeout=10)
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        wait_for_go()
        usage0, wall0 = cpu_times(), time.perf_counter()
        try:
            if args.mode == "udp":
                result["messages"], result["bytes"] = udp_echo(
                    socks, per_conn, args.size, args.idle, args.deadline, messages)
            else:
                result["messages"], result["bytes"] = stream_echo(
                    socks, per_conn, args.size, args.idle, args.deadline, messages,
                    tls=args.mode == "tls")
            result["ok"] = True
        except Failed as exc:
            result["error"] = str(exc)
        except OSError as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
        result["wall"] = time.perf_counter() - wall0
        usage1 = cpu_times()
        result["cpu_user"] = usage1[0] - usage0[0]
        result["cpu_sys"] = usage1[1] - usage0[1]
        result["cpu"] = result["cpu_user"] + result["cpu_sys"]
    finally:
        for s in socks:
            s.close()
        if control is not None:
            control.close()
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


def raise_nofile(needed=0):
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; return the new soft limit
    (None where there is no resource module)."""
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit still has the kernel's nr_open above it: ask for what is needed.
    want = hard if hard != resource.RLIM_INFINITY else max(soft, needed + 1024)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def idle_main(args):
    """Idle connections for the memory workload, opened and closed on command (stdin):

    ``open K``  open K more connections (blocking connects); answer ``opened TOTAL``
    ``check``   answer a JSON line: ok, open, error: every connection still open, none
                readable (the server sent nothing and closed nothing)
    ``close``   close them all; answer ``closed TOTAL`` and exit

    The server's loop must run while connections are opened: the parent asks for a batch,
    runs its loop until it has accepted the batch, then reads the answer, so the listen
    backlog never overflows (a dropped SYN would cost a second).
    """
    raise_nofile(args.conns)
    addr = parse_addr(args.tcp)
    socks = []
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        for line in sys.stdin:
            cmd = line.split()
            if cmd[:1] == ["open"] and len(cmd) == 2:
                for _ in range(int(cmd[1])):
                    s = socket.create_connection(addr, timeout=10)
                    socks.append(s)
                answer = f"opened {len(socks)}"
            elif cmd == ["check"]:
                answer = json.dumps(check_idle(socks))
            elif cmd == ["close"]:
                for s in socks:
                    s.close()
                answer = f"closed {len(socks)}"
                socks = []
            else:
                answer = f"error: unknown command {line.strip()!r}"
            sys.stdout.write(answer + "\n")
            sys.stdout.flush()
            if cmd == ["close"]:
                break
    finally:
        for s in socks:
            s.close()
    return 0


def check_idle(socks):
    """Every connection must be open and silent: nothing to read, no EOF, no error."""
    poller = Poller()
    index = {}
    for c, s in enumerate(socks):
        index[s.fileno()] = c
        poller.register(s.fileno(), poller.IN)
    events = poller.poll(0)
    poller.close()
    if events:
        fd, _ = events[0]
        c = index[fd]
        try:
            socks[c].setblocking(False)
            data = socks[c].recv(4096)
            what = f"{len(data)} byte(s) from the server" if data else "EOF from the server"
        except OSError as exc:
            what = repr(exc)
        return {"ok": False, "open": len(socks), "error": f"connection {c} of {len(socks)}: "
                f"{what} (and {len(events) - 1} other connection(s) readable)"}
    return {"ok": True, "open": len(socks), "error": None}


# ---------------------------------------------------------------------------------------------
# the parent side: used by the workloads in the measured process


def read_line(proc, timeout, what):
    """One line of proc's stdout within timeout seconds (raw fd reads: no buffering games)."""
    fd = proc.stdout.fileno()
    buf = b""
    end = time.monotonic() + timeout
    while b"\n" not in buf:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise RuntimeError(f"{what}: nothing after {timeout:.0f} s")
        chunk = os.read(fd, 4096)
        if not chunk:
            err = proc.stderr.read().decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"{what} exited early" + (f": {err[-1]}" if err else ""))
        buf += chunk
    return buf.decode()


def exit_code(status):
    if hasattr(os, "waitstatus_to_exitcode"):
        return os.waitstatus_to_exitcode(status)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def reap(proc, timeout):
    """Wait for proc (killing it after timeout); return its CPU seconds (user + system)."""
    end = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = exit_code(status)
            return usage.ru_utime + usage.ru_stime
        if time.monotonic() > end:
            proc.kill()
            end = time.monotonic() + 5
        time.sleep(0.005)


class Client:
    """A ``loadgen.py`` client process: started in setup, released in run, collected after."""

    def __init__(self, mode, size=0, conns=CONNS_DEFAULT, messages=0, tcp=None, unix=None,
                 control=None, cafile=None, idle=IDLE_TIMEOUT):
        argv = [sys.executable, os.path.join(HERE, "loadgen.py"), mode, "--size", str(size),
                "--conns", str(conns), "--messages", str(messages), "--idle", str(idle)]
        if cafile:
            argv += ["--cafile", cafile]
        if tcp:
            argv += ["--tcp", f"{tcp[0]}:{tcp[1]}"]
        if unix:
            argv += ["--unix", unix]
        if control:
            argv += ["--control", f"{control[0]}:{control[1]}"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.result = None
        self.exit_cpu = None

    def wait_ready(self, timeout=30.0):
        line = read_line(self.proc, timeout, "load generator").strip()
        if line != "ready":
            raise RuntimeError(f"load generator said {line!r}, not 'ready'")

    def go(self):
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def send(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def command(self, line, timeout=30.0):
        """Idle mode: send one command line, return the client's one-line answer."""
        self.send(line)
        return read_line(self.proc, timeout, f"load generator ({line})").strip()

    def exited(self):
        """None while the process runs, else why it stopped (its last line on stderr)."""
        if self.proc.returncode is None:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if not pid:
                return None
            self.proc.returncode = exit_code(status)
            self.exit_cpu = usage.ru_utime + usage.ru_stime
        err = self.proc.stderr.read().decode(errors="replace").strip().splitlines()
        return (f"the load generator exited (status {self.proc.returncode})"
                + (f": {err[-1]}" if err else ""))

    def finish(self, timeout=10.0):
        """The client's JSON result (once); ``result['process_cpu']`` is its whole CPU time."""
        if self.result is None:
            try:
                line = read_line(self.proc, timeout, "load generator result")
            except RuntimeError as exc:
                line = json.dumps({"ok": False, "error": str(exc)})
            self.result = json.loads(line)
            self.result["process_cpu"] = reap(self.proc, 5.0) \
                if self.proc.returncode is None else self.exit_cpu
        return self.result

    def close(self):
        if self.proc.returncode is None:
            try:
                self.proc.stdin.close()  # EOF instead of "go": the client exits
            except OSError:
                pass
            reap(self.proc, 5.0)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass


WRK_CHECK = """
-- Written by benchmarks/loadgen.py: every response's status and body are compared.
bad = 0
seen = 0
local expected = %s
local expected_headers = {%s}
response = function(status, headers, body)
  seen = seen + 1
  local ok = status == 200 and body == expected
  local count = 0
  for name, value in pairs(headers) do
    count = count + 1
    if expected_headers[name] ~= value then ok = false end
  end
  if not ok or count ~= %d then bad = bad + 1 end
end
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    io.write(string.format("wrk-check: seen %%d bad %%d\\n", t:get("seen"), t:get("bad")))
  end
end
"""


def lua_string(data):
    if isinstance(data, str):
        data = data.encode()
    return '"' + "".join(f"\\{b}" for b in data) + '"'


#: wrk's shell: starts wrk on "go", stops it with SIGINT (wrk then prints its report) on
#: "stop" or when stdin reaches EOF, so a wrk never outlives the worker that started it.
WRK_WRAPPER = """
read go && [ "$go" = go ] || exit 0
"$@" &
pid=$!
read stop
kill -INT $pid 2>/dev/null
wait $pid
"""


class Wrk:
    """``wrk`` held back by a shell until released, so its start is the only set-up timed.

    With ``expect_body`` (and ``expect_headers``, a dict), a Lua script makes wrk compare
    every response (status 200, exactly these headers, this body) and report the counts;
    without it wrk only counts errors and non-2xx responses.
    """

    def __init__(self, url, conns, threads=1, duration=60, expect_body=None,
                 expect_headers=None):
        # wrk runs for `duration` seconds at most; the workload stops it (SIGINT) as soon as
        # the server has answered its requests, and wrk then prints its statistics.
        self.script = None
        opts = []
        if expect_body is not None:
            import tempfile

            fd, self.script = tempfile.mkstemp(prefix="uvcffi-bench-", suffix=".lua")
            headers = expect_headers or {}
            with os.fdopen(fd, "w") as f:
                f.write(WRK_CHECK % (lua_string(expect_body), ", ".join(
                    f"[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()),
                    len(headers)))
            opts = ["-s", self.script]
        argv = ["sh", "-c", WRK_WRAPPER, "sh",
                "wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s"] + opts + [url]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.output = None
        self.cpu = None

    def go(self):
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def stop(self, timeout=10.0):
        """Stop wrk (SIGINT, from its shell); return its report (text).  ``self.cpu`` is then
        the CPU time of wrk and its shell."""
        if self.output is None:
            try:
                self.proc.stdin.write(b"stop\n")
                self.proc.stdin.close()
            except (OSError, ValueError):
                pass
            out = b""
            fd = self.proc.stdout.fileno()
            end = time.monotonic() + timeout
            while select.select([fd], [], [], max(0.0, end - time.monotonic()))[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                out += chunk
            self.cpu = reap(self.proc, 5.0)
            self.output = out.decode(errors="replace")
        return self.output

    def close(self):
        if self.proc.returncode is None:
            self.stop(timeout=2.0)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        if self.script is not None:
            os.unlink(self.script)
            self.script = None


def parse_wrk(text):
    """wrk's report -> dict: requests, non2xx, socket errors (connect/read/write/timeout) and,
    with the checking script, seen/bad (None without it)."""
    out = {"requests": None, "non2xx": 0, "connect": 0, "read": 0, "write": 0, "timeout": 0,
           "seen": None, "bad": None}
    for line in text.splitlines():
        words = line.replace(",", " ").split()
        if "requests in" in line and words and words[0].isdigit():
            out["requests"] = int(words[0])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            out["non2xx"] = int(words[-1])
        elif line.strip().startswith("Socket errors:"):
            for name in ("connect", "read", "write", "timeout"):
                if name in words:
                    out[name] = int(words[words.index(name) + 1])
        elif line.startswith("wrk-check:"):
            out["seen"] = (out["seen"] or 0) + int(words[2])
            out["bad"] = (out["bad"] or 0) + int(words[4])
    return out


def main(argv):
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["stream", "tls", "udp", "idle"])
    p.add_argument("--tcp", help="HOST:PORT of the echo server (TCP, or UDP in udp mode)")
    p.add_argument("--unix", help="path of a Unix stream socket (stream mode)")
    p.add_argument("--control", help="HOST:PORT of a TCP listener; udp mode closes its "
                                     "connection to it when done")
    p.add_argument("--cafile", help="tls mode: the server's (self-signed) certificate")
    p.add_argument("--conns", type=int, default=10)
    p.add_argument("--messages", type=int, default=0, help="in total, over all conns")
    p.add_argument("--size", type=int, default=0)
    p.add_argument("--idle", type=float, default=IDLE_TIMEOUT)
    p.add_argument("--deadline", type=float, default=DEADLINE)
    args = p.parse_args(argv)
    if args.mode == "idle":
        if not args.tcp:
            p.error("idle mode needs --tcp")
        return idle_main(args)
    if args.messages <= 0 or args.size <= 0:
        p.error(f"{args.mode} mode needs --messages and --size")
    if args.mode == "stream" and not (args.tcp or args.unix):
        p.error("stream mode needs --tcp or --unix")
    if args.mode == "tls" and not (args.tcp and args.cafile):
        p.error("tls mode needs --tcp and --cafile")
    if args.mode == "udp" and not (args.tcp and args.control):
        p.error("udp mode needs --tcp and --control")
    if args.mode == "udp" and args.size > 8192:
        p.error("keep datagrams <= 8 KiB")
    return client_main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
