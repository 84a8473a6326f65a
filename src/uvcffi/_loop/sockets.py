"""File-descriptor readiness (``add_reader`` & co.) and the ``sock_*`` coroutines.

One poll handle per fd
----------------------
libuv lets only one ``uv_poll_t`` watch a given fd, so everything the loop watches on an fd
lives in one :class:`_Watch`: the reader Handle, the writer Handle, and a poll handle
started with the union of their interests.  Adding or removing one of them restarts the
handle with the new mask; removing the last closes it -- just before the next ``uv_run``,
since no event can arrive until then: a sock_* operation that ends and the next one that
waits on the same socket object in the same task step (an echo loop, a request/response
client) find the handle still started for the right mask, and re-arm it without a single
syscall, where asyncio's selector pays an ``epoll_ctl`` DEL and ADD.  (Until then the fd's
slot in libuv stays taken: see ``_sk_release_fd``.  ``run_forever`` closes parked handles
when it returns.)  After a test's work no poll handle is left open.

A poll event appends the reader's and/or the writer's Handle to the ready queue -- the
Handle objects themselves, so a cancelled one is skipped -- and runs no user code.
Replacing a reader cancels the old Handle, as in asyncio.

``uv_poll_init`` switches the fd to non-blocking mode.  asyncio's selector leaves the fd
alone, and an fd shared with other code (stdin, a socket a thread reads with blocking
calls) must not change under it, so a blocking fd is switched back: libuv never reads or
writes a polled fd, it only asks epoll about it.

Errors reported by libuv
------------------------
When epoll reports POLLERR (a failed connect, a reset, an ICMP error on a UDP socket)
libuv stops the handle and calls back with ``UV_EBADF`` and no events.  That is not the
error itself, so both the reader and the writer are run, and their own ``recv``/``send``/
``getsockopt(SO_ERROR)`` raise the real one -- what the selector loop does, since it reports
POLLERR as "readable and writable".  The handle is restarted at once: epoll is level
triggered, and a callback that keeps waiting must keep being called while the condition
lasts.

An fd closed behind the loop's back
-----------------------------------
epoll forgets an fd when it is closed, silently.  That alone is harmless: nothing more is
reported, as in asyncio.  The danger is libuv's deferred registration: ``uv_poll_start``
only queues the fd, and the ``epoll_ctl(ADD)`` happens in the next ``uv_run``, where any
failure -- EBADF for an fd closed in the meantime, EPERM for one reused by a regular file
-- makes libuv call ``abort()`` (libuv #5130, uvloop #100: "close the socket right after
sock_recv started waiting").  So every fd whose poll handle was (re)started since the last
``uv_run`` is probed just before the next one, with the same ``epoll_ctl(ADD)``/``DEL`` on
a private epoll instance: an fd that fails it has its poll handle closed, and its reader
and writer are run so that their syscalls raise the real error (EBADF).  Only a close from
another thread between the probe and ``uv_run`` can still reach libuv's abort.

An fd closed and reused behind the loop's back (``close()``, then a new socket that gets the
same number) is watched again when its reader or writer is replaced or removed and
re-added: any change restarts the poll handle, which re-registers the fd with epoll.
(The stdlib's selector keeps the stale registration when the mask does not change.)

The sock_* coroutines
---------------------
Each tries its operation at once and only when that raises BlockingIOError registers a
reader or writer that retries it on every readiness event until it stops raising
BlockingIOError.  The coroutine removes the reader/writer when it ends however it ends --
result, error or cancellation -- unless someone else replaced it in the meantime, so a
cancelled operation leaves the socket usable.

Who owns the poll handles
-------------------------
Every poll handle here belongs to a user registration (the sock_* coroutines remove theirs
when they finish), so none is counted in ``_internal_handle_count``: a reader left behind
at the end of a test is the test's leak.  ``close()`` closes whatever is still registered.
"""

from __future__ import annotations

import asyncio
import io
import os
import select
import socket
import stat
from typing import Any, Callable

from .._uv.poll import READABLE, WRITABLE, UVPoll
from .core import LoopCore
from .handles import Handle

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover - Python built without ssl
    _ssl = None  # type: ignore[assignment]

_HAS_IPV6 = hasattr(socket, "AF_INET6")
# The chunk size of asyncio's sendfile fallback (asyncio.constants).
_SENDFILE_CHUNK = 256 * 1024
_RETRY = (BlockingIOError, InterruptedError)


def _fileobj_to_fd(fileobj: Any) -> int:
    """An int fd, or the fd of an object with ``fileno()`` (the selectors module's rules)."""
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


def _check_ssl_socket(sock: Any) -> None:
    if _ssl is not None and isinstance(sock, _ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def _retry(fut: Any, op: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """A reader/writer callback: run ``op(*args)`` into ``fut`` unless it would block."""
    if fut.done():
        return  # cancelled (or finished) while this callback was already queued
    try:
        result = op(*args)
    except _RETRY:
        return  # spurious wake-up: wait for the next event
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


def _numeric_address(
    address: Any, family: int, type_: int, proto: int
) -> tuple[Any, ...] | None:
    """The sockaddr to connect to if ``address`` needs no name resolution, else None.

    The rules of asyncio's shortcut around getaddrinfo: a numeric host (for the socket's
    family, or IPv4 then IPv6 when unspecified), a numeric or empty port, and a TCP or UDP
    socket; anything else goes through ``getaddrinfo``.
    """
    host, port = address[:2]
    if host is None or not hasattr(socket, "inet_pton"):
        return None
    if type_ == socket.SOCK_STREAM:
        if proto not in (0, socket.IPPROTO_TCP):
            return None
    elif type_ == socket.SOCK_DGRAM:
        if proto not in (0, socket.IPPROTO_UDP):
            return None
    else:
        return None
    if port is None or port == b"" or port == "":
        port = 0
    else:
        try:
            port = int(port)
        except (TypeError, ValueError):
            return None  # a service name
    if isinstance(host, bytes):
        host = host.decode("idna")
    if not isinstance(host, str) or "%" in host:
        return None  # inet_pton rejects an IPv6 zone index ("::1%lo")
    if family == socket.AF_UNSPEC:
        families = [socket.AF_INET, socket.AF_INET6] if _HAS_IPV6 else [socket.AF_INET]
    else:
        families = [family]
    for af in families:
        try:
            socket.inet_pton(af, host)
        except (OSError, ValueError):
            continue
        if _HAS_IPV6 and af == socket.AF_INET6:
            flowinfo, scope_id = (tuple(address[2:4]) + (0, 0))[:2]
            return (host, port, flowinfo, scope_id)
        return (host, port)
    return None


def _check_sendfile_params(sock: Any, file: Any, offset: Any, count: Any) -> None:
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if sock.type != socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")


class _SendAll:
    """``sock_sendall``'s retried operation: one ``send`` of what is left per call."""

    __slots__ = ("sock", "view", "pos")

    def __init__(self, sock: Any, view: memoryview, pos: int) -> None:
        self.sock = sock
        self.view = view
        self.pos = pos

    def __call__(self) -> None:
        pos = self.pos + self.sock.send(self.view[self.pos :])
        if pos < len(self.view):
            self.pos = pos
            raise BlockingIOError  # not done: wait until writable again
        self.view = None  # type: ignore[assignment]  # let the caller resize its buffer


def _connect_result(sock: Any, address: Any) -> None:
    """``sock_connect``'s retried operation: how the non-blocking connect ended."""
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, f"Connect call failed {address}")


def _accept_nonblocking(sock: Any) -> tuple[Any, Any]:
    conn, address = sock.accept()
    conn.setblocking(False)
    return conn, address


class _FdPoll(UVPoll):
    """A poll handle whose events stop the moment it is closed.

    A handle may be closed (or replaced) while the batch that holds its events is being
    dispatched; libuv itself reports nothing after ``uv_close``, and neither do we.
    """

    __slots__ = ()

    def _on_event(self, kind: int, a: int, b: int) -> None:
        if self._ptr is not None:
            self._callback(a, b)


class _Watch:
    """Everything the loop watches on one fd."""

    __slots__ = (
        "fd", "fileobj", "reader", "writer", "poll", "ready", "loop", "unsynced", "parked",
    )

    def __init__(self, loop: SocketMixin, fd: int, fileobj: Any) -> None:
        self.loop = loop
        self.ready = loop._ready
        self.fd = fd
        self.fileobj = fileobj  # what was registered, to find it again once closed
        self.reader: Handle | None = None
        self.writer: Handle | None = None
        self.poll: _FdPoll | None = None
        self.unsynced = False  # (re)started since the last uv_run: probe before the next
        self.parked = False  # emptied since the last uv_run: closed before the next

    def mask(self) -> int:
        return (READABLE if self.reader is not None else 0) | (
            WRITABLE if self.writer is not None else 0
        )

    def on_poll(self, status: int, events: int) -> None:
        """The poll callback, called while a batch is dispatched: only queue Handles."""
        if status < 0:
            self.loop._sk_poll_failed(self)
            return
        reader = self.reader
        if reader is not None and events & READABLE:
            if reader._cancelled:
                self.loop._sk_drop(self, True)
            else:
                self.ready.append(reader)
        writer = self.writer
        if writer is not None and events & WRITABLE:
            if writer._cancelled:
                self.loop._sk_drop(self, False)
            else:
                self.ready.append(writer)

    def run_both(self) -> None:
        """Queue the reader and the writer: their own syscalls will tell what happened."""
        for handle in (self.reader, self.writer):
            if handle is not None and not handle._cancelled:
                self.ready.append(handle)


class SocketMixin(LoopCore):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sk_watches: dict[int, _Watch] = {}
        self._sk_unsynced: list[_Watch] = []  # to probe before the next uv_run
        self._sk_parked: list[_Watch] = []  # to close before the next uv_run
        self._sk_armed = False
        self._sk_probe: Any = None  # a private epoll instance, created on first need

    # ------------------------------------------------------------------------------------
    # The poll handles
    # ------------------------------------------------------------------------------------

    def _sk_apply(
        self, watch: _Watch, restart: bool = False, create: bool = True,
        nonblocking: bool = False,
    ) -> None:
        """Make ``watch``'s poll handle watch exactly what its reader and writer want.

        A registered watch without a poll handle is one whose fd turned out to be unusable;
        a new handle is tried only when something is added (``create``), and may raise
        OSError (EBADF, EPERM) or RuntimeError (another handle watches the fd).
        """
        mask = watch.mask()
        poll = watch.poll
        if not mask:
            if poll is None:
                if self._sk_watches.get(watch.fd) is watch:
                    del self._sk_watches[watch.fd]
            elif not watch.parked:
                # Keep it, still started, until just before the next uv_run (no event can
                # arrive before): a sock_* operation that ends and the next one that waits
                # on the same socket, in one task step, then cost no syscall at all.
                watch.parked = True
                self._sk_parked.append(watch)
                self._sk_arm()
            return
        if poll is None:
            if not create:
                return
            poll = self._sk_new_poll(watch, nonblocking)
        elif not restart and poll.events == mask:
            return
        poll.start(mask)
        if not watch.unsynced:
            watch.unsynced = True
            self._sk_unsynced.append(watch)
            self._sk_arm()

    def _sk_new_poll(self, watch: _Watch, nonblocking: bool) -> _FdPoll:
        fd = watch.fd
        blocking = False
        if not nonblocking:
            try:
                blocking = os.get_blocking(fd)
            except OSError:
                pass  # a bad fd: let libuv report it
        try:
            poll = _FdPoll(self._uv, fd, watch.on_poll)
        except FileExistsError:
            raise RuntimeError(
                f"File descriptor {fd!r} is used by another handle of this loop "
                "(a transport, or the signal wake-up socket)"
            ) from None
        if blocking:
            try:
                os.set_blocking(fd, True)  # uv_poll_init made it non-blocking
            except OSError:
                pass
        watch.poll = poll
        return poll

    def _sk_discard(self, watch: _Watch) -> None:
        watch.parked = False
        if self._sk_watches.get(watch.fd) is watch:
            del self._sk_watches[watch.fd]
        poll = watch.poll
        if poll is not None:
            watch.poll = None
            poll.close()

    def _sk_poll_failed(self, watch: _Watch) -> None:
        """libuv saw POLLERR and stopped the handle: run both callbacks, keep watching."""
        watch.run_both()
        poll = watch.poll
        if poll is not None:
            try:
                self._sk_apply(watch, restart=True)
            except OSError:  # pragma: no cover - uv_poll_start only fails with EEXIST
                watch.poll = None
                poll.close()

    def _sk_drop(self, watch: _Watch, reader: bool) -> None:
        """An event for a Handle cancelled by its owner: stop watching for it."""
        if reader:
            watch.reader = None
        else:
            watch.writer = None
        self._sk_apply(watch, create=False)

    # -- just before uv_run ----------------------------------------------------------------

    def _sk_arm(self) -> None:
        """Have the next iteration call _sk_before_uv_run just before uv_run."""
        if not self._sk_armed:
            self._sk_armed = True
            self._before_poll = self._sk_before_uv_run

    def _sk_before_uv_run(self) -> None:
        self._sk_armed = False
        if self._sk_parked:
            self._sk_discard_parked()
        if self._sk_unsynced:
            watches = self._sk_unsynced
            self._sk_unsynced = []
            for watch in watches:
                watch.unsynced = False
                poll = watch.poll
                if poll is None or not poll.events or self._sk_fd_pollable(watch.fd):
                    continue
                # Closed (or reused by something epoll refuses) since it was started:
                # libuv would abort() on its epoll_ctl(ADD).  See the module docstring.
                watch.poll = None
                poll.close()
                watch.run_both()

    def _sk_discard_parked(self) -> None:
        parked = self._sk_parked
        self._sk_parked = []
        for watch in parked:
            if watch.parked:
                self._sk_discard(watch)

    def _sk_release_fd(self, fd: int) -> None:
        """Close at once a parked poll handle on ``fd``, if there is one.

        A parked handle still holds the fd's slot in libuv until the next uv_run, so
        code about to give the same fd number to another libuv handle (``uv_tcp_open``,
        ``uv_pipe_open``, ``uv_poll_init``...) -- possible only if the parked socket was
        closed and the number reused in the meantime -- calls this first, or gets EEXIST.
        """
        watch = self._sk_watches.get(fd)
        if watch is not None and watch.parked:
            self._sk_discard(watch)

    def run_forever(self) -> None:
        try:
            super().run_forever()
        finally:
            # No parked handle outlives a run: while the loop is stopped the user may close
            # sockets and hand their fd numbers to anything.
            if self._sk_parked:
                self._sk_discard_parked()

    def _sk_fd_pollable(self, fd: int) -> bool:
        probe = self._sk_probe
        if probe is None:
            try:
                probe = self._sk_probe = select.epoll()
            except OSError:  # out of fds, say: the next best check, without one
                return _fd_pollable_by_stat(fd)
        try:
            probe.register(fd, select.EPOLLIN)
        except FileExistsError:  # pragma: no cover - every probe is undone at once
            pass
        except OSError:
            return False
        probe.unregister(fd)
        return True

    def close(self) -> None:
        if not self.is_running() and not self._closed:
            watches = list(self._sk_watches.values())
            self._sk_watches.clear()
            self._sk_unsynced = []
            self._sk_parked = []
            self._sk_armed = False
            self._before_poll = None
            for watch in watches:
                poll = watch.poll
                watch.poll = None
                if poll is not None:
                    poll.close()
            if self._sk_probe is not None:
                self._sk_probe.close()
                self._sk_probe = None
        super().close()

    # ------------------------------------------------------------------------------------
    # Readers and writers
    # ------------------------------------------------------------------------------------

    def _sk_add(
        self, fileobj: Any, fd: int, reading: bool, callback: Any, args: tuple[Any, ...],
        nonblocking: bool = False,
    ) -> Handle:
        self._check_closed()
        handle = Handle(callback, args, self, None)
        watch = self._sk_watches.get(fd)
        if watch is None:
            watch = _Watch(self, fd, fileobj)
            if reading:
                watch.reader = handle
            else:
                watch.writer = handle
            self._sk_apply(watch, nonblocking=nonblocking)  # raises before registering
            self._sk_watches[fd] = watch
            return handle
        if watch.parked:
            watch.parked = False
            if reading:
                watch.reader = handle
            else:
                watch.writer = handle
            poll = watch.poll
            if (
                fileobj is watch.fileobj
                and isinstance(fileobj, socket.socket)
                and poll is not None
                and poll.events == watch.mask()
            ):
                # The same socket object, still open with this fd (a socket's fd only
                # changes to -1), watched for the same thing: nothing to change.
                return handle
            watch.fileobj = fileobj
            try:
                self._sk_apply(watch, restart=True, nonblocking=nonblocking)
            except BaseException:
                watch.reader = watch.writer = None
                self._sk_discard(watch)
                raise
            return handle
        old = watch.reader if reading else watch.writer
        if reading:
            watch.reader = handle
        else:
            watch.writer = handle
        try:
            # A replacement restarts the handle too: the fd may have been closed and
            # reused since it was registered, and must be registered with epoll again.
            self._sk_apply(watch, restart=old is not None, nonblocking=nonblocking)
        except BaseException:
            if reading:
                watch.reader = old
            else:
                watch.writer = old
            raise
        if old is not None:
            old.cancel()
        return handle

    def _sk_lookup(self, fileobj: Any) -> _Watch | None:
        try:
            fd = _fileobj_to_fd(fileobj)
        except ValueError:
            # A file object closed since it was registered: find it by identity.
            for watch in self._sk_watches.values():
                if watch.fileobj is fileobj and not watch.parked:
                    return watch
            raise
        return self._sk_watches.get(fd)

    def _sk_remove(self, fileobj: Any, reading: bool) -> bool:
        if self._closed:
            return False
        watch = self._sk_lookup(fileobj)
        if watch is None:
            return False
        if reading:
            handle, watch.reader = watch.reader, None
        else:
            handle, watch.writer = watch.writer, None
        if handle is None:
            return False
        self._sk_apply(watch, create=False)
        handle.cancel()
        return True

    def add_reader(self, fd: Any, callback: Callable[..., object], *args: Any) -> None:
        self._sk_add(fd, _fileobj_to_fd(fd), True, callback, args)

    def add_writer(self, fd: Any, callback: Callable[..., object], *args: Any) -> None:
        self._sk_add(fd, _fileobj_to_fd(fd), False, callback, args)

    def remove_reader(self, fd: Any) -> bool:
        return self._sk_remove(fd, True)

    def remove_writer(self, fd: Any) -> bool:
        return self._sk_remove(fd, False)

    # ------------------------------------------------------------------------------------
    # The sock_* coroutines
    # ------------------------------------------------------------------------------------

    def _sk_check(self, sock: Any) -> None:
        _check_ssl_socket(sock)
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")

    async def _sk_wait(
        self, sock: Any, reading: bool, op: Callable[..., Any], *args: Any
    ) -> Any:
        """Retry ``op(*args)`` whenever ``sock`` is ready until it stops blocking."""
        fut = self.create_future()
        fd = _fileobj_to_fd(sock)
        # Python keeps the fd of a socket with a timeout (0 included) in non-blocking mode.
        nonblocking = sock.gettimeout() is not None
        handle = self._sk_add(sock, fd, reading, _retry, (fut, op, args), nonblocking)
        try:
            return await fut
        finally:
            del fut  # the result or exception may reference this frame
            if not handle._cancelled:  # else it was replaced or removed: not ours to remove
                self._sk_remove(fd, reading)

    async def sock_recv(self, sock: Any, nbytes: int) -> bytes:
        self._sk_check(sock)
        try:
            return sock.recv(nbytes)  # type: ignore[no-any-return]
        except _RETRY:
            pass
        return await self._sk_wait(sock, True, sock.recv, nbytes)  # type: ignore[no-any-return]

    async def sock_recv_into(self, sock: Any, buf: Any) -> int:
        self._sk_check(sock)
        try:
            return sock.recv_into(buf)  # type: ignore[no-any-return]
        except _RETRY:
            pass
        return await self._sk_wait(sock, True, sock.recv_into, buf)  # type: ignore[no-any-return]

    async def sock_recvfrom(self, sock: Any, bufsize: int) -> tuple[bytes, Any]:
        self._sk_check(sock)
        try:
            return sock.recvfrom(bufsize)  # type: ignore[no-any-return]
        except _RETRY:
            pass
        return await self._sk_wait(sock, True, sock.recvfrom, bufsize)  # type: ignore[no-any-return]

    async def sock_recvfrom_into(self, sock: Any, buf: Any, nbytes: int = 0) -> tuple[int, Any]:
        self._sk_check(sock)
        if not nbytes:
            nbytes = len(buf)
        try:
            return sock.recvfrom_into(buf, nbytes)  # type: ignore[no-any-return]
        except _RETRY:
            pass
        return await self._sk_wait(  # type: ignore[no-any-return]
            sock, True, sock.recvfrom_into, buf, nbytes
        )

    async def sock_sendall(self, sock: Any, data: Any) -> None:
        self._sk_check(sock)
        try:
            sent = sock.send(data)
        except _RETRY:
            sent = 0
        if type(data) is bytes or type(data) is bytearray:
            if sent == len(data):
                return
            view = memoryview(data)
        else:
            view = memoryview(data)
            if view.nbytes == sent:
                return
            if view.itemsize != 1 or view.ndim != 1:
                view = view.cast("B")  # count bytes, not items
        await self._sk_wait(sock, False, _SendAll(sock, view, sent))

    async def sock_sendto(self, sock: Any, data: Any, address: Any) -> int:
        self._sk_check(sock)
        try:
            return sock.sendto(data, address)  # type: ignore[no-any-return]
        except _RETRY:
            pass
        return await self._sk_wait(sock, False, sock.sendto, data, address)  # type: ignore[no-any-return]

    async def sock_connect(self, sock: Any, address: Any) -> None:
        self._sk_check(sock)
        family = sock.family
        if family == socket.AF_INET or (_HAS_IPV6 and family == socket.AF_INET6):
            address = await self._sk_resolve(address, family, sock.type, sock.proto)
        try:
            sock.connect(address)
            return
        except _RETRY:
            pass
        # In progress (or interrupted, when it goes on in the background): the socket
        # becomes writable when it is done, and SO_ERROR tells how it ended.
        await self._sk_wait(sock, False, _connect_result, sock, address)

    async def _sk_resolve(self, address: Any, family: int, type_: int, proto: int) -> Any:
        sockaddr = _numeric_address(address, family, type_, proto)
        if sockaddr is not None:
            return sockaddr
        host, port = address[:2]
        infos = await self.getaddrinfo(host, port, family=family, type=type_, proto=proto)
        if not infos:
            raise OSError(f"getaddrinfo({host!r}) returned empty list")
        return infos[0][4]

    async def sock_accept(self, sock: Any) -> tuple[Any, Any]:
        self._sk_check(sock)
        try:
            return _accept_nonblocking(sock)
        except _RETRY:
            pass
        return await self._sk_wait(sock, True, _accept_nonblocking, sock)  # type: ignore[no-any-return]

    async def sock_sendfile(
        self,
        sock: Any,
        file: Any,
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool = True,
    ) -> int:
        """Send a file by reading it in chunks and ``sock_sendall``-ing them.

        This is asyncio's fallback path; there is no ``os.sendfile`` path yet, so
        ``fallback=False`` raises SendfileNotAvailableError.  As documented (and as
        asyncio's ``os.sendfile`` path does), reading starts at ``offset`` -- also when it
        is 0 and the file is elsewhere -- and the file position ends after the last byte
        sent, even when an error interrupts the transfer.
        """
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        _check_ssl_socket(sock)
        _check_sendfile_params(sock, file, offset, count)
        if not fallback:
            raise asyncio.SendfileNotAvailableError(
                f"syscall sendfile is not available for socket {sock!r} "
                f"and file {file!r} combination"
            )
        if offset or _seekable(file):
            file.seek(offset)
        chunk = min(count, _SENDFILE_CHUNK) if count else _SENDFILE_CHUNK
        buf = bytearray(chunk)
        # An in-memory file is read directly; anything else may block, so in a thread.
        in_memory = isinstance(file, io.BytesIO)
        total = 0
        try:
            while True:
                if count:
                    chunk = min(count - total, chunk)
                    if chunk <= 0:
                        break
                view = memoryview(buf)[:chunk]
                if in_memory:
                    n = file.readinto(view)
                else:
                    n = await self.run_in_executor(None, file.readinto, view)
                if not n:
                    break  # end of file
                await self.sock_sendall(sock, view[:n])
                total += n
            return total
        finally:
            if total > 0 and hasattr(file, "seek"):
                file.seek(offset + total)


def _fd_pollable_by_stat(fd: int) -> bool:
    """Open, and not a regular file or a directory (which epoll refuses)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _seekable(file: Any) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False
