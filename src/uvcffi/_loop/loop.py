"""``uvcffi.Loop``: the complete ``asyncio.AbstractEventLoop``.

The scheduling core lives in :mod:`.core`; each other service is a mixin in a module of its
own (:mod:`.executor`, :mod:`.dns`, :mod:`.signals`, :mod:`.sockets`, :mod:`.datagram`,
:mod:`.streams`, :mod:`.pipes`, :mod:`.subprocess`).
A method of ``AbstractEventLoop`` that no mixin implements yet raises NotImplementedError
naming itself, rather than falling back to anything slower or different.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .datagram import DatagramMixin
from .dns import DNSMixin
from .executor import ExecutorMixin
from .pipes import PipesMixin
from .signals import SignalMixin
from .sockets import SocketMixin
from .streams import StreamsMixin
from .subprocess import SubprocessMixin


class Loop(
    SignalMixin,
    StreamsMixin,
    SocketMixin,
    DatagramMixin,
    PipesMixin,
    SubprocessMixin,
    DNSMixin,
    ExecutorMixin,
):
    """An asyncio event loop running on libuv.

    ``stdlib_futures=True`` makes ``create_future``/``create_task`` return the stdlib's
    ``asyncio.Future``/``asyncio.Task`` (C-accelerated on CPython) instead of uvcffi's own.
    """

    def __init__(self, *, stdlib_futures: bool = False) -> None:
        super().__init__(stdlib_futures=stdlib_futures)


def _not_implemented(name: str, is_coroutine: bool) -> Any:
    message = f"uvcffi.Loop.{name}() is not implemented yet"
    if is_coroutine:

        async def method(self: Loop, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError(message)

    else:

        def method(self: Loop, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            raise NotImplementedError(message)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = message + "."
    return method


_NOT_YET = {
    # coroutines
    "create_connection": True, "create_server": True, "sendfile": True, "start_tls": True,
    "create_unix_connection": True, "create_unix_server": True,
    "connect_accepted_socket": True, "create_datagram_endpoint": True,
    "connect_read_pipe": True, "connect_write_pipe": True, "subprocess_shell": True,
    "subprocess_exec": True, "sock_recv": True, "sock_recv_into": True,
    "sock_recvfrom": True, "sock_recvfrom_into": True, "sock_sendall": True,
    "sock_sendto": True, "sock_connect": True, "sock_accept": True, "sock_sendfile": True,
    # plain methods
    "add_reader": False, "remove_reader": False, "add_writer": False, "remove_writer": False,
}

for _name, _is_coroutine in _NOT_YET.items():
    # Names that this Python's AbstractEventLoop lacks (3.9) get the stub too.
    if getattr(Loop, _name, None) is getattr(asyncio.AbstractEventLoop, _name, None):
        setattr(Loop, _name, _not_implemented(_name, _is_coroutine))
del _name, _is_coroutine
