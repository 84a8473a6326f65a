"""Layer 1: libuv handles and requests, in libuv's vocabulary, knowing nothing of asyncio.

One module per libuv handle type, each a thin Python wrapper over the glue in
``src/_cffi_src/glue/uvcffi.c``:

* ``loop``: :class:`UVLoop`, a libuv loop with its event queue and the registry that maps
  the integer ids carried by events back to Python objects.
* ``handle``: :class:`UVHandle`, the base class and its lifetime protocol.
* ``timer``, ``async_``, ``poll``, ``signal``, ``loop_watcher`` (idle, check, prepare).
* ``stream`` (reads through the arena, writes, listen/accept), ``tcp``, ``pipe``, ``udp``.
* ``process``: ``uv_spawn`` and the child's exit.
* ``dns``: the getaddrinfo and getnameinfo requests.

Nothing above this package touches ``ffi`` or ``lib``.
"""

from __future__ import annotations

from .._ffi import LIBUV_VERSION as LIBUV_VERSION
