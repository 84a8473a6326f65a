"""Echo servers on the loop under test, loaded by a client in another process.

The server runs on the measured loop; ``benchmarks/loadgen.py`` runs as a separate process
with 10 concurrent connections (or UDP sockets), each sending one message, reading its whole
echo back and comparing every byte before sending the next.  One op is one message echoed
(``size`` bytes out and the same bytes back), so ops/s is messages per second and
MB/s per direction = ops/s * size / 1e6.  The timed part starts when the client is released
(its process started and its connections accepted during setup) and ends when the server has
seen every connection close, which the client does only after it read every echo and then EOF.
A wrong, missing or extra byte, an early EOF or a stall of 3 s fails the run.
"""

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile

from .. import loadgen
from . import WrongResult, check, register
from ._netbase import CONNS, Counter, NetWorkload, run_until

KIB = 1024
SETUP_TIMEOUT = 30.0
READ_SIZE = 65536


class EchoProtocol(asyncio.Protocol):
    __slots__ = ("counter", "transport")

    def __init__(self, counter):
        self.counter = counter
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.counter.open(transport)

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        return None  # close

    def connection_lost(self, exc):
        self.counter.close(self.transport)


class ControlProtocol(asyncio.Protocol):
    """The UDP client's control connection: its closing ends the timed part."""

    def __init__(self, counter):
        self.counter = counter
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.counter.open(transport)

    def data_received(self, data):
        self.counter.error(f"{len(data)} unexpected byte(s) on the control connection")

    def connection_lost(self, exc):
        self.counter.close(self.transport)


class UdpEchoProtocol(asyncio.DatagramProtocol):
    def __init__(self, errors):
        self.errors = errors
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)

    def error_received(self, exc):
        self.errors.append(f"error_received({exc!r})")


class StreamEcho(NetWorkload):
    """TCP or Unix echo; subclasses pick the server API, the family and the message size."""

    unit = "message"
    size = KIB
    family = "tcp"  # or "unix"
    mode = "stream"  # loadgen.py's mode
    api = ""

    @classmethod
    def unavailable(cls):
        if cls.family == "unix" and not hasattr(socket, "AF_UNIX"):
            return "no Unix sockets here"
        return None

    # -- the server, per API ------------------------------------------------------------------

    def start_server(self, loop):
        """Start the echo server; return the client's address keyword (tcp=... or unix=...)."""
        raise NotImplementedError

    def listen_address(self):
        if self.family == "unix":
            self.tmpdir = tempfile.TemporaryDirectory(prefix="uvcffi-bench-")
            return os.path.join(self.tmpdir.name, "echo.sock")
        return ("127.0.0.1", 0)

    # -- the workload ---------------------------------------------------------------------------

    def setup(self, loop, n):
        self.n = n
        self.counter = Counter(loop, CONNS)
        where = self.start_server(loop)
        self.client = loadgen.Client(self.mode, self.size, CONNS, n, **where)
        self.client.wait_ready(SETUP_TIMEOUT)
        run_until(loop, self.counter.all_open, SETUP_TIMEOUT, "accepting the connections")

    def verify(self, loop):
        res = self.client.finish()
        check_client(self, res)
        check(not self.counter.errors, f"server: {'; '.join(self.counter.errors[:3])}")
        check(res["messages"] == self.n and res["bytes"] == self.n * self.size,
              f"the client got {res['messages']} of {self.n} messages echoed "
              f"({res['bytes']} bytes)")


def check_client(w, res):
    """Record the client's figures; raise WrongResult with the client's reason if it failed."""
    cpu, wall = res.get("cpu"), res.get("wall")
    w.extra = {"client_cpu": cpu, "client_wall": wall,
               "client_util": cpu / wall if cpu is not None and wall else None,
               "client_process_cpu": res.get("process_cpu"),
               "server_seconds": getattr(w, "seconds", None),
               "server_cpu": getattr(w, "cpu", None)}
    if w.extra["server_cpu"] is not None and w.extra["server_seconds"]:
        w.extra["server_util"] = w.extra["server_cpu"] / w.extra["server_seconds"]
    if not res.get("ok"):
        raise WrongResult(f"client: {res.get('error')}")


class ProtocolEcho(StreamEcho):
    """create_server / create_unix_server + Protocol: data_received -> transport.write."""

    api = "a Protocol (data_received -> transport.write)"

    def start_server(self, loop):
        addr = self.listen_address()
        factory = lambda: EchoProtocol(self.counter)  # noqa: E731
        if self.family == "unix":
            self.server = loop.run_until_complete(loop.create_unix_server(factory, addr))
            return {"unix": addr}
        self.server = loop.run_until_complete(loop.create_server(factory, *addr))
        return {"tcp": self.server.sockets[0].getsockname()[:2]}


class StreamsEcho(StreamEcho):
    """asyncio.start_server: reader.read / writer.write / await writer.drain()."""

    api = "asyncio streams (start_server; read, write, drain)"

    def start_server(self, loop):
        counter = self.counter

        async def handle(reader, writer):
            counter.open()
            try:
                while True:
                    data = await reader.read(READ_SIZE)
                    if not data:
                        break
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError) as exc:
                counter.error(f"streams handler: {exc!r}")
            finally:
                writer.close()
                try:
                    await writer.wait_closed()
                except (ConnectionError, OSError):
                    pass
                counter.close()

        async def start():
            return await asyncio.start_server(handle, "127.0.0.1", 0)

        self.server = loop.run_until_complete(start())
        return {"tcp": self.server.sockets[0].getsockname()[:2]}


class SockEcho(StreamEcho):
    """Non-blocking sockets: loop.sock_accept, sock_recv, sock_sendall."""

    api = "loop.sock_accept/sock_recv/sock_sendall on non-blocking sockets"

    def start_server(self, loop):
        counter = self.counter
        lsock = self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(128)
        lsock.setblocking(False)
        self.conns = []
        self.tasks = []

        async def handle(conn):
            try:
                while True:
                    data = await loop.sock_recv(conn, READ_SIZE)
                    if not data:
                        break
                    await loop.sock_sendall(conn, data)
            except (ConnectionError, OSError) as exc:
                counter.error(f"sock handler: {exc!r}")
            finally:
                conn.close()
                counter.close()

        async def accept():
            for _ in range(CONNS):
                conn, _ = await loop.sock_accept(lsock)
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.conns.append(conn)
                counter.open()
                self.tasks.append(loop.create_task(handle(conn)))

        self.tasks.append(loop.create_task(accept()))
        return {"tcp": lsock.getsockname()[:2]}

    def teardown(self, loop):
        try:
            super().teardown(loop)
        finally:
            for t in self.tasks:
                t.cancel()
            if self.tasks:
                loop.run_until_complete(asyncio.gather(*self.tasks, return_exceptions=True))
            for s in getattr(self, "conns", ()):
                s.close()
            if getattr(self, "lsock", None) is not None:
                self.lsock.close()


def make_cert(folder):
    """A throwaway self-signed certificate for 127.0.0.1 / localhost: (cert, key) paths.

    An EC P-256 key: made in milliseconds, and only the handshake (not timed) depends on it.
    """
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    proc = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "1",
         "-subj", f"/CN={loadgen.TLS_HOSTNAME}",
         "-addext", f"subjectAltName=DNS:{loadgen.TLS_HOSTNAME},IP:127.0.0.1"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    if proc.returncode:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError("openssl could not make a certificate"
                           + (f": {err[-1]}" if err else ""))
    return cert, key


class TlsEcho(ProtocolEcho):
    """create_server(ssl=...) + the echo Protocol; the client speaks TLS with the stdlib's
    ssl module over its non-blocking sockets (loadgen.py tls)."""

    api = "a Protocol over TLS (create_server(ssl=...); data_received -> transport.write)"
    mode = "tls"

    @classmethod
    def unavailable(cls):
        try:
            import ssl  # noqa: F401
        except ImportError:
            return "no ssl module"
        if shutil.which("openssl") is None:
            return "openssl not found on PATH (it makes the throwaway certificate)"
        return None

    def start_server(self, loop):
        import ssl

        self.tmpdir = tempfile.TemporaryDirectory(prefix="uvcffi-bench-")
        cert, key = make_cert(self.tmpdir.name)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        factory = lambda: EchoProtocol(self.counter)  # noqa: E731
        self.server = loop.run_until_complete(
            loop.create_server(factory, "127.0.0.1", 0, ssl=ctx))
        return {"tcp": self.server.sockets[0].getsockname()[:2], "cafile": cert}

    def setup(self, loop, n):
        # The client's handshakes need the server's loop running, and a TLS server calls
        # connection_made only once its handshake is done: run the loop until all are open,
        # then the client (which says "ready" after its handshakes) is ready too.
        self.n = n
        self.counter = Counter(loop, CONNS)
        where = self.start_server(loop)
        self.client = loadgen.Client(self.mode, self.size, CONNS, n, **where)
        run_until(loop, self.counter.all_open, SETUP_TIMEOUT, "the TLS handshakes",
                  alive=self.client.exited)
        self.client.wait_ready(SETUP_TIMEOUT)


def echo(cls, name, size, quick, full, family="tcp", full_only=False):
    doc = (f"{size // KIB} KiB messages echoed by {cls.api}, {CONNS} "
           f"{'Unix' if family == 'unix' else 'loopback TCP'} connections in ping-pong"
           + ("; full run only" if full_only else ""))
    attrs = {"name": name, "doc": doc, "size": size, "quick": quick, "full": full,
             "family": family, "full_only": full_only}
    return register(type(cls.__name__ + f"_{name}", (cls,), attrs))


# Sizes: --quick keeps each sample well under a second of timed work on a busy 2-core machine
# (each sample also pays for two client processes, the warm-up's and the timed run's); the 10
# and 100 KiB variants sit out --quick so that it stays within about 3 minutes.  A TLS message
# costs several times a plain one (and a sample pays for 20 handshakes): half the count.
for _cls, _api in ((ProtocolEcho, "proto"), (StreamsEcho, "stream"), (SockEcho, "sock")):
    echo(_cls, f"tcp_{_api}_1k", 1 * KIB, 20_000, 50_000)
    echo(_cls, f"tcp_{_api}_10k", 10 * KIB, 5_000, 20_000, full_only=True)
    echo(_cls, f"tcp_{_api}_100k", 100 * KIB, 1_000, 3_000, full_only=True)
echo(ProtocolEcho, "unix_proto_1k", 1 * KIB, 20_000, 50_000, family="unix")
echo(TlsEcho, "tls_proto_1k", 1 * KIB, 5_000, 30_000)
echo(TlsEcho, "tls_proto_64k", 64 * KIB, 1_000, 3_000, full_only=True)


@register
class UdpEcho(NetWorkload):
    name = "udp_1k"
    doc = (f"1 KiB datagrams echoed by create_datagram_endpoint + DatagramProtocol (sendto), "
           f"{CONNS} client sockets in ping-pong")
    unit = "datagram"
    size = KIB
    quick = 20_000
    full = 50_000

    def setup(self, loop, n):
        self.n = n
        self.errors = []
        self.counter = Counter(loop, 1)  # the control connection
        self.server = loop.run_until_complete(loop.create_server(
            lambda: ControlProtocol(self.counter), "127.0.0.1", 0))
        self.transport, _ = loop.run_until_complete(loop.create_datagram_endpoint(
            lambda: UdpEchoProtocol(self.errors), local_addr=("127.0.0.1", 0)))
        self.client = loadgen.Client(
            "udp", self.size, CONNS, n,
            tcp=self.transport.get_extra_info("sockname")[:2],
            control=self.server.sockets[0].getsockname()[:2])
        self.client.wait_ready(SETUP_TIMEOUT)
        run_until(loop, self.counter.all_open, SETUP_TIMEOUT, "accepting the control connection")

    def verify(self, loop):
        res = self.client.finish()
        check_client(self, res)
        check(not self.errors and not self.counter.errors,
              f"server: {'; '.join((self.errors + self.counter.errors)[:3])}")
        check(res["messages"] == self.n, f"the client got {res['messages']} of {self.n} "
                                         "datagrams echoed")

    def teardown(self, loop):
        try:
            super().teardown(loop)
        finally:
            if getattr(self, "transport", None) is not None:
                self.transport.close()
                loop.run_until_complete(asyncio.sleep(0))
