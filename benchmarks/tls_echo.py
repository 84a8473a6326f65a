"""TLS echo round trips, side by side in one process: asyncio, uvloop (if installed), uvcffi.

    python benchmarks/tls_echo.py [--rounds 3]      (PYTHONPATH=src for an in-place build)

Makes a throwaway self-signed certificate with the `openssl` command, runs a TLS echo
server and a streams client on each loop in turn (alternating, several rounds), checks
every echo, and prints medians with ratios.  Loopback only.  A stopgap until TLS joins
the workload registry of run.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import statistics
import subprocess
import tempfile
import time


def make_cert(folder: str) -> tuple[str, str]:
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
         "-out", cert, "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


async def echo_rate(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext,
                    size: int, n: int) -> float:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost")
    message = os.urandom(size)
    start = time.perf_counter()
    for _ in range(n):
        writer.write(message)
        if await reader.readexactly(size) != message:
            raise AssertionError("corrupted echo")
    elapsed = time.perf_counter() - start
    writer.close()
    server.close()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import uvcffi  # installed, or PYTHONPATH=src after an in-place `python build_ffi.py`

    factories = {"asyncio": asyncio.new_event_loop, "uvcffi": uvcffi.new_event_loop}
    try:
        import uvloop

        factories["uvloop"] = uvloop.new_event_loop
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as folder:
        cert, key = make_cert(folder)
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(cert, key)
        client_ctx = ssl.create_default_context(cafile=cert)
        sizes = ((1024, 5000), (65536, 1000))
        rates: dict[str, dict[int, list[float]]] = {
            k: {s: [] for s, _ in sizes} for k in factories
        }
        for _ in range(args.rounds):
            for name, factory in factories.items():
                for size, n in sizes:
                    loop = factory()
                    try:
                        rate = loop.run_until_complete(echo_rate(server_ctx, client_ctx, size, n))
                    finally:
                        loop.close()
                    rates[name][size].append(rate)
    print(f"TLS echo round trips/s, median of {args.rounds} alternating rounds")
    for size, _ in sizes:
        base = statistics.median(rates["asyncio"][size])
        ref = statistics.median(rates["uvloop"][size]) if "uvloop" in rates else None
        for name in factories:
            median = statistics.median(rates[name][size])
            versus = f"  x uvloop {median / ref:4.2f}" if ref else ""
            ratio = median / base
            print(f"{size:6d} B  {name:8s} {median:9.0f}/s  x asyncio {ratio:4.2f}{versus}")


if __name__ == "__main__":
    main()
