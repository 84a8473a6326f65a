"""Helpers shared by the network tests (tests/loop/test_tcp.py, test_unix.py, test_tls.py,
test_streams.py, test_net_faults.py).

Everything here works the same on the stdlib loop (the oracle) and on uvcffi's, on CPython
and on PyPy 3.9.  Every wait is bounded: a broken loop must fail a test, never hang it.
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
from typing import Any, Callable

import pytest

import uvcffi

# The bound of a whole test body; generous, so that a slow CI machine does not fail.
TIMEOUT = 10.0


def run(loop: Any, coro: Any, timeout: float = TIMEOUT) -> Any:
    """Run ``coro`` on ``loop`` with a deadline: a hang fails with TimeoutError.

    If it fails, a uvcffi loop is closed at once (libuv closes what the test left open), so
    that the failure is reported once, not again by the fixture's leak check at teardown.
    """
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))
    except BaseException:
        if is_uvcffi(loop) and not loop.is_closed() and not loop.is_running():
            loop.close()
        raise


def is_uvcffi(loop: Any) -> bool:
    return isinstance(loop, uvcffi.Loop)


def uvcffi_bug(request: Any, loop: Any, reason: str) -> None:
    """Mark the running test as a known uvcffi bug, for uvcffi's loop only (strict)."""
    if is_uvcffi(loop):
        request.applymarker(pytest.mark.xfail(reason=f"uvcffi bug: {reason}", strict=True))


PYPY = sys.implementation.name == "pypy"
OLD_STDLIB_READER = sys.version_info < (3, 11)

def guard_non_blocking(request: Any, loop: Any, *transports: Any) -> None:
    """Call before a transfer larger than the kernel's socket buffers.

    A transport whose fd is in blocking mode would block the loop forever in send() or
    recv(), where no asyncio timeout can fire: fail the test now instead.  (uvcffi had that
    bug on PyPy, whose socket.socket(fileno=) makes the fd blocking: fixed in ba164eb.)
    """
    for tr in transports:
        sock = tr.get_extra_info("socket")
        assert sock is not None
        assert not os.get_blocking(sock.fileno()), f"{tr!r}: its fd is in blocking mode"


def payload(size: int, seed: int = 0) -> bytes:
    """``size`` pseudo-random bytes: a reordered, lost or repeated chunk shows."""
    rnd = random.Random(seed)
    if hasattr(rnd, "randbytes"):
        return rnd.randbytes(size)
    return bytes(rnd.getrandbits(8) for _ in range(size))  # pragma: no cover


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def require_ipv6() -> None:
    if not has_ipv6_loopback():
        reason = "this machine has no IPv6 loopback (::1)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)


def raise_nofile_limit(wanted: int) -> None:
    """Raise RLIMIT_NOFILE's soft limit to at least ``wanted`` (up to the hard limit),
    or skip the test saying why."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    if hard != resource.RLIM_INFINITY and hard < wanted:
        reason = f"RLIMIT_NOFILE hard limit {hard} < {wanted} descriptors needed"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY
                                                 else hard, hard))


async def settle(iterations: int = 10) -> None:
    """Let a few loop iterations pass (close callbacks, deferred deliveries)."""
    for _ in range(iterations):
        await asyncio.sleep(0)


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0,
                     what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def assert_no_live_handles(loop: Any) -> None:
    """For uvcffi: assert, inside the test body, that no libuv handle was left open.

    The ``loop`` fixture checks the same after the test, but a failure there is a teardown
    error that no xfail mark covers; this closes the loop first so that a leak is reported
    once, by the test itself.
    """
    if not is_uvcffi(loop) or loop.is_closed():
        return

    async def nothing() -> None:
        await settle(5)

    loop.run_until_complete(nothing())
    stats = loop._uv_handle_stats()
    if stats["live"]:
        loop.close()
        raise AssertionError(f"libuv handles left open: {stats}")


def collect_errors(loop: Any) -> list[dict[str, Any]]:
    """Route the loop's exception handler into a list (returned) instead of the log."""
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    return errors


class Recorder(asyncio.Protocol):
    """A protocol that records everything that happens to it.

    ``echo``: write back what arrives.  ``keep_open``: what eof_received returns.
    ``pause_on_made``: pause reading from connection_made on.
    """

    def __init__(self, *, echo: bool = False, keep_open: bool = False,
                 pause_on_made: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self.echo = echo
        self.keep_open = keep_open
        self.pause_on_made = pause_on_made
        self.transport: Any = None
        self.received = bytearray()
        self.events: list[str] = []
        self.made = loop.create_future()
        self.eof = loop.create_future()
        self.lost = loop.create_future()
        self.lost_exc: BaseException | None = None
        self.made_count = 0
        self.eof_count = 0
        self.lost_count = 0
        self.pause_count = 0
        self.resume_count = 0
        self.sizes_at_pause: list[int] = []
        self.sizes_at_resume: list[int] = []
        self._want: tuple[int, Any] | None = None

    def connection_made(self, transport: Any) -> None:
        self.made_count += 1
        self.events.append("made")
        self.transport = transport
        if self.pause_on_made:
            transport.pause_reading()
            if OLD_STDLIB_READER and not is_uvcffi(asyncio.get_running_loop()):
                # The stdlib's transport before 3.11 (seen on 3.9) starts reading after
                # connection_made even if it was paused there: pause it again once it has.
                asyncio.get_running_loop().call_soon(self._pause_again)
        if not self.made.done():
            self.made.set_result(transport)

    def _pause_again(self) -> None:
        if not self.transport.is_closing():
            self.transport.resume_reading()
            self.transport.pause_reading()

    def data_received(self, data: bytes) -> None:
        assert isinstance(data, bytes), type(data)
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.received += data
        if self.echo:
            self.transport.write(data)
        self._check_want()

    def eof_received(self) -> bool:
        self.eof_count += 1
        self.events.append("eof")
        if not self.eof.done():
            self.eof.set_result(None)
        return self.keep_open

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost_count += 1
        self.events.append("lost")
        self.lost_exc = exc
        if not self.lost.done():
            self.lost.set_result(exc)
        if self._want is not None and not self._want[1].done():
            self._want[1].set_exception(ConnectionError(
                f"connection lost with {len(self.received)} of {self._want[0]} bytes: {exc!r}"))

    def pause_writing(self) -> None:
        self.pause_count += 1
        self.events.append("pause")
        self.sizes_at_pause.append(self.transport.get_write_buffer_size())

    def resume_writing(self) -> None:
        self.resume_count += 1
        self.events.append("resume")
        self.sizes_at_resume.append(self.transport.get_write_buffer_size())

    def _check_want(self) -> None:
        if self._want is not None and len(self.received) >= self._want[0]:
            fut = self._want[1]
            self._want = None
            if not fut.done():
                fut.set_result(None)

    async def wait_bytes(self, n: int) -> bytes:
        """Wait until at least ``n`` bytes arrived; return everything received."""
        if len(self.received) < n:
            if self.lost.done():
                raise ConnectionError(f"connection already lost at {len(self.received)}")
            fut = asyncio.get_running_loop().create_future()
            self._want = (n, fut)
            await fut
        return bytes(self.received)


async def start_tcp_server(loop: Any, factory: Callable[[], Any], host: str = "127.0.0.1",
                           **kwargs: Any) -> tuple[Any, int]:
    server = await loop.create_server(factory, host, 0, **kwargs)
    return server, server.sockets[0].getsockname()[1]


async def close_server(server: Any) -> None:
    server.close()
    await asyncio.wait_for(server.wait_closed(), TIMEOUT / 2)


# -- certificates for the TLS tests ----------------------------------------------------------


class Certs:
    """A test CA and a server certificate for localhost / 127.0.0.1 / ::1, as PEM files."""

    def __init__(self, directory: str, how: str) -> None:
        self.dir = directory
        self.how = how
        self.ca = os.path.join(directory, "ca.pem")
        self.cert = os.path.join(directory, "server.pem")
        self.key = os.path.join(directory, "server.key")
        self.other_ca = os.path.join(directory, "other-ca.pem")

    def server_context(self) -> Any:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self, ca: str | None = None) -> Any:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(ca or self.ca)
        return ctx


def _certs_with_cryptography(directory: str) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    validity = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))

    def pem_key(key: Any) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    def make_ca(cn: str) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(validity[0]).not_valid_after(validity[1])
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    ca_key, ca_cert = make_ca("uvcffi test CA")
    _, other_cert = make_ca("uvcffi other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0]).not_valid_after(validity[1])
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files = {
        "ca.pem": ca_cert.public_bytes(pem),
        "other-ca.pem": other_cert.public_bytes(pem),
        "server.pem": cert.public_bytes(pem),
        "server.key": pem_key(key),
    }
    for name, data in files.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


def _certs_with_openssl(directory: str, openssl: str) -> None:
    def sh(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for stem, cn in (("ca", "uvcffi test CA"), ("other-ca", "uvcffi other CA")):
        sh("req", "-x509", *ec, "-keyout", f"{stem}.key", "-out", f"{stem}.pem",
           "-days", "30", "-subj", f"/CN={cn}",
           "-addext", "basicConstraints=critical,CA:TRUE",
           "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")
    sh("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr",
       "-subj", "/CN=localhost")
    with open(os.path.join(directory, "server.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
                "authorityKeyIdentifier=keyid\n")
    sh("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
       "-CAcreateserial", "-out", "server.pem", "-days", "30", "-sha256",
       "-extfile", "server.ext")


def make_certs(directory: str) -> Certs:
    """Generate the test PKI with ``cryptography`` if importable, else the openssl command;
    skip (saying why) if neither is available."""
    try:
        import ssl  # noqa: F401
    except ImportError:  # pragma: no cover
        reason = "this Python has no ssl module"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    try:
        import cryptography  # noqa: F401

        _certs_with_cryptography(directory)
        return Certs(directory, "cryptography")
    except ImportError:
        pass
    openssl = shutil.which("openssl")
    if openssl is None:
        reason = "neither the cryptography package nor the openssl command is available"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    _certs_with_openssl(directory, openssl)
    return Certs(directory, "openssl")


PY311 = sys.version_info >= (3, 11)
PY312 = sys.version_info >= (3, 12)
