"""Subprocesses on ``uv_spawn``: ``subprocess_exec``/``subprocess_shell``.

The behaviour is asyncio's (3.11's ``base_subprocess``, ``unix_events``): the same
argument checks, the same ``SubprocessTransport``, the same order of protocol callbacks --
``connection_made`` once every pipe transport is connected; ``pipe_data_received`` and
``pipe_connection_lost`` per pipe; ``process_exited`` when the child has been reaped,
possibly before its pipes are closed; ``connection_lost(None)`` last, once the child has
exited *and* every pipe is closed, and only then are the ``wait()``-ers woken (as in
3.11; ``wait()`` after ``process_exited`` returns at once).  Return codes are the exit
status, or ``-signal`` for a child killed by a signal.  ``asyncio.create_subprocess_exec``
and ``asyncio.subprocess.Process`` run on it unchanged (they use ``_wait()``).

libuv does the fork, exec and reaping; Popen is not involved and there is no child watcher.
libuv reaps on SIGCHLD with ``waitpid(pid)`` for its own pids only (``_uv/process.py`` has
the caveats).

Pipes.  ``PIPE`` makes an ordinary ``os.pipe()`` per stream, as Popen does, not libuv's
``UV_CREATE_PIPE`` (a socketpair): a child may depend on its stdio being pipes
(``/dev/stdin`` cannot be opened on a socket, ``stat`` shows a FIFO).  The child's ends are
inherited (``UV_INHERIT_FD``) and closed in the parent after the spawn; the parent's ends
become the same pipe transports as ``connect_write_pipe``/``connect_read_pipe``
(``pipes.py``), whose pipe objects are unbuffered file objects as Popen's would be.
``DEVNULL`` is libuv's ``UV_IGNORE`` (the child opens /dev/null itself), ``STDOUT`` for
stderr is the stdout slot's fd, ``None`` inherits the parent's fd, a file object or fd is
inherited as is.

Popen's keyword arguments:

* ``cwd``, ``env``, ``executable``, ``start_new_session`` (``UV_PROCESS_DETACHED``: libuv
  calls ``setsid()`` in the child), ``umask``, ``pipesize``: as Popen.
* ``close_fds`` (default True) and ``pass_fds``: libuv closes nothing in the child, it only
  relies on close-on-exec, so an fd made inheritable (``os.set_inheritable``, or opened by C
  code without O_CLOEXEC) would leak.  With ``close_fds`` a fork hook in the glue marks
  every fd >= 3 close-on-exec in the child, and each fd of ``pass_fds`` is passed as an
  extra stdio slot at its own number (``UV_INHERIT_FD``), for which libuv clears the flag:
  the child gets exactly 0-2 and ``pass_fds``, as with Popen.  Nothing is changed in the
  parent, so concurrent spawns in other threads are unaffected.  ``pass_fds`` with
  ``close_fds=False`` warns and turns ``close_fds`` on, as Popen does.
* ``process_group`` (any Python version): ``setpgid(0, pgid)`` in the same fork hook; a
  failure (e.g. EPERM together with ``start_new_session``, as with Popen) raises.
* ``preexec_fn`` is refused with NotImplementedError: libuv forks in C and execs at once,
  with no way to run Python in between (uvloop runs it from a fork handler, which is not
  safe); ``start_new_session=True`` or ``process_group=0`` replace the common
  ``os.setsid``/``os.setpgrp``.  ``user``, ``group``, ``extra_groups`` and
  ``restore_signals=False`` are refused the same way: libuv always resets every signal
  handler in the child (a superset of ``restore_signals=True``).

Errors: a missing program or cwd raises FileNotFoundError, a bad one PermissionError or
NotADirectoryError, with Popen's message and filename (libuv reports only the errno; it
is attributed to ``cwd`` when ``cwd`` is not an accessible directory).

The transport kills a running child on ``close()``, and keeps its handle open until the
child has exited, so ``process_exited`` still comes.  If the loop is closed first, the child
is left running and reaped by a thread (``_uv/process.py``): it never becomes a zombie.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import logging
import os
import signal
import subprocess
import sys
import warnings
from typing import Any, Callable

from .._uv.process import UVProcess
from .core import LoopCore
from .handles import Handle
from .pipes import UVReadPipeTransport, UVWritePipeTransport

logger = logging.getLogger("asyncio")

PIPE = subprocess.PIPE
STDOUT = subprocess.STDOUT
DEVNULL = subprocess.DEVNULL

_SHELL = "/bin/sh"

# Popen's keyword arguments on POSIX, with their defaults.
_POPEN_KWARGS: dict[str, Any] = {
    "executable": None,
    "close_fds": True,
    "pass_fds": (),
    "cwd": None,
    "env": None,
    "start_new_session": False,
    "process_group": None,
    "preexec_fn": None,
    "restore_signals": True,
    "umask": -1,
    "pipesize": -1,
    "user": None,
    "group": None,
    "extra_groups": None,
    "startupinfo": None,
    "creationflags": 0,
}

# Errors that exec()/chdir() report about a path, which Popen attaches as the filename.
_PATH_ERRORS = frozenset({
    errno.ENOENT, errno.EACCES, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG,
    errno.ENOEXEC, errno.EISDIR, errno.ETXTBSY, errno.EPERM,
})


class _Spec:
    """Popen's arguments, checked and encoded for uv_spawn."""

    __slots__ = ("file", "args", "env", "cwd", "cwd_arg", "program", "close_fds", "pass_fds",
                 "new_session", "pgid", "umask", "pipesize")


def _fsencode(value: Any) -> bytes:
    data = os.fsencode(value)
    if b"\0" in data:
        raise ValueError("embedded null byte")
    return data


def _spec(args: Any, shell: bool, kwargs: dict[str, Any]) -> _Spec:
    for name in kwargs:
        if name not in _POPEN_KWARGS:
            raise TypeError(f"Popen.__init__() got an unexpected keyword argument {name!r}")
    opts = {**_POPEN_KWARGS, **kwargs}
    pipesize = -1 if opts["pipesize"] is None else opts["pipesize"]
    if not isinstance(pipesize, int):
        raise TypeError("pipesize must be an integer")
    close_fds = opts["close_fds"]
    pass_fds = opts["pass_fds"]
    if pass_fds and not close_fds:
        warnings.warn("pass_fds overriding close_fds.", RuntimeWarning, stacklevel=4)
        close_fds = True
    if opts["startupinfo"] is not None:
        raise ValueError("startupinfo is only supported on Windows platforms")
    if opts["creationflags"] != 0:
        raise ValueError("creationflags is only supported on Windows platforms")
    if opts["preexec_fn"] is not None:
        raise NotImplementedError(
            "uvcffi cannot run preexec_fn: libuv forks and execs in C, with no way to run "
            "Python code in the child. Use start_new_session=True instead of os.setsid, "
            "process_group=0 instead of os.setpgrp, or a wrapper program."
        )
    for name in ("user", "group", "extra_groups"):
        if opts[name] is not None:
            raise NotImplementedError(f"uvcffi does not support {name}= for subprocesses")
    if not opts["restore_signals"]:
        raise NotImplementedError(
            "uvcffi does not support restore_signals=False: libuv resets every signal "
            "handler to its default in the child"
        )
    pgid = opts["process_group"]
    pgid = -1 if pgid is None else int(pgid)
    umask = int(opts["umask"])

    if isinstance(args, (str, bytes)):
        args = [args]
    elif isinstance(args, os.PathLike):
        if shell:
            raise TypeError("path-like args is not allowed when shell is true")
        args = [args]
    else:
        args = list(args)
    executable = opts["executable"]
    if shell:
        args = [_SHELL, "-c", *args]
        if executable:
            args[0] = executable
    if executable is None:
        executable = args[0]

    spec = _Spec()
    spec.program = executable
    spec.args = [_fsencode(a) for a in args]
    spec.file = _fsencode(executable)
    env = opts["env"]
    if env is None:
        spec.env = None
    else:
        env_list = []
        for key, value in env.items():
            k = os.fsencode(key)
            if b"=" in k:
                raise ValueError("illegal environment variable name")
            item = k + b"=" + os.fsencode(value)
            if b"\0" in item:
                raise ValueError("embedded null byte")
            env_list.append(item)
        spec.env = env_list
    cwd = opts["cwd"]
    spec.cwd_arg = None if cwd is None else os.fsdecode(cwd)
    spec.cwd = None if cwd is None else _fsencode(cwd)
    spec.close_fds = bool(close_fds)
    fds = sorted({int(fd) for fd in pass_fds})
    if fds and fds[0] < 0:
        raise ValueError("bad value(s) in fds_to_keep")
    spec.pass_fds = fds
    spec.new_session = bool(opts["start_new_session"])
    spec.pgid = pgid
    spec.umask = umask
    spec.pipesize = pipesize
    return spec


def _spawn_error(exc: OSError, spec: _Spec) -> OSError:
    """Popen's exception for a failed spawn: the errno, strerror and the path at fault."""
    code = exc.errno
    if code is None:
        return exc
    if code not in _PATH_ERRORS or (code == errno.EPERM and spec.pgid >= 0):
        return OSError(code, os.strerror(code))
    filename = spec.program
    cwd = spec.cwd_arg
    if cwd is not None and not (os.path.isdir(cwd) and os.access(cwd, os.X_OK)):
        filename = cwd  # libuv changes directory before exec: the cwd failed first
    return OSError(code, os.strerror(code), filename)


def _fd_is_open(fd: int) -> bool:
    try:
        os.get_inheritable(fd)
    except OSError:
        return False
    return True


class _PipeProto(asyncio.Protocol):
    """Connects one pipe transport to the subprocess transport (asyncio's
    ``WriteSubprocessPipeProto``/``ReadSubprocessPipeProto`` in one class)."""

    def __init__(self, proc: UVSubprocessTransport, fd: int) -> None:
        self.proc: Any = proc
        self.fd = fd
        self.pipe: Any = None
        self.disconnected = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} fd={self.fd} pipe={self.pipe!r}>"

    def connection_made(self, transport: Any) -> None:
        self.pipe = transport

    def connection_lost(self, exc: BaseException | None) -> None:
        self.disconnected = True
        self.proc._pipe_connection_lost(self.fd, exc)
        self.proc = None

    def pause_writing(self) -> None:
        self.proc._protocol.pause_writing()

    def resume_writing(self) -> None:
        self.proc._protocol.resume_writing()

    def data_received(self, data: bytes) -> None:
        self.proc._pipe_data_received(self.fd, data)


class UVSubprocessTransport(asyncio.SubprocessTransport):
    def __init__(self, loop: Any, protocol: Any, args: Any, shell: bool, stdin: Any,
                 stdout: Any, stderr: Any, bufsize: int, waiter: Any = None,
                 extra: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(extra)
        self._closed = False
        self._protocol = protocol
        self._loop = loop
        self._proc: UVProcess | None = None
        self._pid: int | None = None
        self._returncode: int | None = None
        self._exit_waiters: list[Any] | None = []
        self._pending_calls: collections.deque[Any] | None = collections.deque()
        self._pipes: dict[int, Any] = {}
        self._finished = False
        try:
            self._start(args, shell, stdin, stdout, stderr, kwargs)
        except BaseException:
            self.close()
            raise
        self._pid = self._proc.pid  # type: ignore[union-attr]
        if loop.get_debug():
            program = args if isinstance(args, (bytes, str)) else args[0]
            logger.debug("process %r created: pid %s", program, self._pid)
        # After the pipe transports' connection_made (they were queued first).
        loop.call_soon(self._connect_pipes, waiter)

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._closed:
            info.append("closed")
        if self._pid is not None:
            info.append(f"pid={self._pid}")
        if self._returncode is not None:
            info.append(f"returncode={self._returncode}")
        elif self._pid is not None:
            info.append("running")
        else:
            info.append("not started")
        for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
            proto = self._pipes.get(fd)
            if proto is not None:
                info.append(f"{name}={proto.pipe}")
        return "<{}>".format(" ".join(info))

    # -- starting --------------------------------------------------------------------------

    def _start(self, args: Any, shell: bool, stdin: Any, stdout: Any, stderr: Any,
               kwargs: dict[str, Any]) -> None:
        spec = _spec(args, shell, kwargs)
        to_close: list[int] = []  # every fd we made: the child's ends, and ours on failure
        parent_ends: dict[int, int] = {}
        try:
            slots: list[Any] = []
            for fd, value in ((0, stdin), (1, stdout), (2, stderr)):
                if value is None:
                    slots.append(fd)
                elif value == PIPE:
                    r, w = os.pipe()
                    to_close += (r, w)
                    ours, theirs = (w, r) if fd == 0 else (r, w)
                    if spec.pipesize > 0:
                        _set_pipe_size(theirs, spec.pipesize)
                    parent_ends[fd] = ours
                    slots.append(theirs)
                elif value == DEVNULL:
                    slots.append(None)  # UV_IGNORE: libuv opens /dev/null in the child
                elif value == STDOUT and fd == 2:
                    slots.append(slots[1])
                elif isinstance(value, int):
                    if value < 0:
                        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
                    slots.append(value)
                else:
                    slots.append(value.fileno())
            for fd in spec.pass_fds:
                if fd < 3 or not _fd_is_open(fd):
                    continue  # Popen keeps nothing it cannot: neither do we
                slots.extend([None] * (fd + 1 - len(slots)))
                slots[fd] = fd
            try:
                proc = UVProcess(
                    self._loop._uv, spec.file, spec.args, env=spec.env, cwd=spec.cwd,
                    detached=spec.new_session and spec.pgid < 0, stdio=slots,
                    close_fds=spec.close_fds, new_session=spec.new_session, pgid=spec.pgid,
                    umask=spec.umask, on_exit=self._on_exit,
                )
            except OSError as exc:
                raise _spawn_error(exc, spec) from None
            self._proc = proc
        except BaseException:
            for fd in to_close:
                os.close(fd)
            raise
        for fd in to_close:
            if fd not in parent_ends.values():
                os.close(fd)
        # The parent's ends become pipe transports, in asyncio's order: stdin, stdout, stderr.
        # Should one fail (EMFILE from its dup), close() kills the child and closes the
        # transports made so far; the ends not yet handed over are closed here.
        loop = self._loop
        files = {fd: open(ours, "wb" if fd == 0 else "rb", buffering=0)
                 for fd, ours in parent_ends.items()}
        try:
            for fd in list(files):
                pipe = files[fd]
                proto = _PipeProto(self, fd)
                if fd == 0:
                    proto.pipe = UVWritePipeTransport(loop, pipe, proto)
                else:
                    proto.pipe = UVReadPipeTransport(loop, pipe, proto)
                del files[fd]
                self._pipes[fd] = proto
        finally:
            for pipe in files.values():
                pipe.close()

    def _connect_pipes(self, waiter: Any) -> None:
        loop = self._loop
        loop.call_soon(self._protocol.connection_made, self)
        pending = self._pending_calls
        self._pending_calls = None
        for callback, data in pending:  # type: ignore[union-attr]
            loop.call_soon(callback, *data)
        if waiter is not None and not waiter.cancelled():
            waiter.set_result(None)

    # -- events ------------------------------------------------------------------------------

    def _on_exit(self, exit_status: int, term_signal: int) -> None:
        """The child was reaped (called during dispatch: no user code here)."""
        self._proc.close()  # type: ignore[union-attr]
        returncode = -term_signal if term_signal else exit_status
        loop = self._loop
        loop._ready.append(Handle(self._process_exited, (returncode,), loop, None))

    def _call(self, callback: Callable[..., object], *data: Any) -> None:
        if self._pending_calls is not None:
            self._pending_calls.append((callback, data))
        else:
            self._loop.call_soon(callback, *data)

    def _pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        self._call(self._protocol.pipe_connection_lost, fd, exc)
        self._try_finish()

    def _pipe_data_received(self, fd: int, data: bytes) -> None:
        self._call(self._protocol.pipe_data_received, fd, data)

    def _process_exited(self, returncode: int) -> None:
        if self._loop.get_debug():
            logger.info("%r exited with return code %r", self, returncode)
        self._returncode = returncode
        self._call(self._protocol.process_exited)
        self._try_finish()

    def _try_finish(self) -> None:
        if self._returncode is None or self._finished:
            return
        if all(p is not None and p.disconnected for p in self._pipes.values()):
            self._finished = True
            self._call(self._call_connection_lost, None)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            # wake up futures waiting for wait()
            for waiter in self._exit_waiters or ():
                if not waiter.cancelled():
                    waiter.set_result(self._returncode)
            self._exit_waiters = None
            self._proc = None
            self._protocol = None

    async def _wait(self) -> int:
        """Wait until the process exits and return its return code (asyncio's private API,
        used by ``asyncio.subprocess.Process.wait``)."""
        if self._returncode is not None:
            return self._returncode
        waiter = self._loop.create_future()
        self._exit_waiters.append(waiter)  # type: ignore[union-attr]
        return await waiter  # type: ignore[no-any-return]

    # -- the SubprocessTransport API -------------------------------------------------------

    def get_pid(self) -> int | None:
        return self._pid

    def get_returncode(self) -> int | None:
        return self._returncode

    def get_pipe_transport(self, fd: int) -> Any:
        proto = self._pipes.get(fd)
        return None if proto is None else proto.pipe

    def _check_proc(self) -> UVProcess:
        proc = self._proc
        if proc is None:
            raise ProcessLookupError()
        return proc

    def send_signal(self, signal: int) -> None:
        proc = self._check_proc()
        if proc.exited:
            return  # Popen's rule: a child known to have exited is not signalled
        try:
            proc.kill(signal)
        except ProcessLookupError:
            pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol

    def get_protocol(self) -> Any:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for proto in self._pipes.values():
            if proto is not None:
                proto.pipe.close()
        proc = self._proc
        if proc is not None and self._returncode is None and not proc.exited:
            if self._loop.get_debug():
                logger.warning("Close running child process: kill %r", self)
            try:
                proc.kill(signal.SIGKILL)
            except ProcessLookupError:
                pass
            # The handle stays open until the child has exited: process_exited() and
            # connection_lost() still come.

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if getattr(self, "_closed", True):
            return
        _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
        loop = self._loop
        if not loop.is_closed():
            # A finaliser may run in any thread; libuv may only be used from the loop's.
            try:
                loop.call_soon_threadsafe(self.close)
                return
            except RuntimeError:
                pass
        self._closed = True
        proc = self._proc
        if proc is not None and not proc.exited:
            try:
                proc.kill(signal.SIGKILL)  # orphaned with the loop: a thread reaps it
            except (OSError, RuntimeError):
                pass


def _set_pipe_size(fd: int, size: int) -> None:
    import fcntl

    # The constant is missing from some fcntl modules (PyPy 3.9); Linux's value is 1031.
    setsz = getattr(fcntl, "F_SETPIPE_SZ", 1031 if sys.platform.startswith("linux") else None)
    if setsz is not None:
        fcntl.fcntl(fd, setsz, size)


class SubprocessMixin(LoopCore):
    async def _make_subprocess_transport(
        self, protocol: Any, args: Any, shell: bool, stdin: Any, stdout: Any, stderr: Any,
        bufsize: int, extra: dict[str, Any] | None = None, **kwargs: Any,
    ) -> UVSubprocessTransport:
        waiter = self.create_future()
        transport = UVSubprocessTransport(self, protocol, args, shell, stdin, stdout, stderr,
                                          bufsize, waiter=waiter, extra=extra, **kwargs)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transport.close()
            await transport._wait()
            raise
        return transport

    async def subprocess_exec(
        self, protocol_factory: Callable[[], Any], program: Any, *args: Any,
        stdin: Any = PIPE, stdout: Any = PIPE, stderr: Any = PIPE,
        universal_newlines: bool = False, shell: bool = False, bufsize: int = 0,
        encoding: Any = None, errors: Any = None, text: Any = None, **kwargs: Any,
    ) -> tuple[Any, Any]:
        if universal_newlines:
            raise ValueError("universal_newlines must be False")
        if shell:
            raise ValueError("shell must be False")
        if bufsize != 0:
            raise ValueError("bufsize must be 0")
        if text:
            raise ValueError("text must be False")
        if encoding is not None:
            raise ValueError("encoding must be None")
        if errors is not None:
            raise ValueError("errors must be None")
        protocol = protocol_factory()
        transport = await self._make_subprocess_transport(
            protocol, (program, *args), False, stdin, stdout, stderr, bufsize, **kwargs
        )
        if self._debug:
            logger.info("execute program %r: %r", program, transport)
        return transport, protocol

    async def subprocess_shell(
        self, protocol_factory: Callable[[], Any], cmd: Any, *,
        stdin: Any = PIPE, stdout: Any = PIPE, stderr: Any = PIPE,
        universal_newlines: bool = False, shell: bool = True, bufsize: int = 0,
        encoding: Any = None, errors: Any = None, text: Any = None, **kwargs: Any,
    ) -> tuple[Any, Any]:
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        if universal_newlines:
            raise ValueError("universal_newlines must be False")
        if not shell:
            raise ValueError("shell must be True")
        if bufsize != 0:
            raise ValueError("bufsize must be 0")
        if text:
            raise ValueError("text must be False")
        if encoding is not None:
            raise ValueError("encoding must be None")
        if errors is not None:
            raise ValueError("errors must be None")
        protocol = protocol_factory()
        transport = await self._make_subprocess_transport(
            protocol, cmd, True, stdin, stdout, stderr, bufsize, **kwargs
        )
        if self._debug:
            logger.info("run shell command %r: %r", cmd, transport)
        return transport, protocol
