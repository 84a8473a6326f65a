/* ------------------------------------------------------------------------------------ */
/* Processes (docs: process.rst)                                                         */
/* ------------------------------------------------------------------------------------ */

/* Appended after uvcffi.c by build_ffi.py: uses its event queue, handle allocation and
 * close callback.
 *
 * Spawning.  uvc_spawn builds libuv's uv_process_options_t in C from flat inputs -- the
 * arguments and the environment as runs of NUL-terminated strings, the stdio slots as an
 * int array -- calls uv_spawn, and frees the options at once: libuv only reads them during
 * the call.  A stdio slot is an fd to inherit (UV_INHERIT_FD, the fd lands at the slot's
 * number in the child), UVC_STDIO_IGNORE (/dev/null for 0-2, nothing for the others), or
 * a UVC_STDIO_PIPE_* kind (UV_CREATE_PIPE with the uv_pipe_t at the same index of
 * `pipes`, made with uvc_pipe_new; libuv opens it on its end of a socketpair).
 *
 * Events: (EXIT, id, exit status, terminating signal), once, after libuv has reaped the
 * child (waitpid from its SIGCHLD watcher); the handle is then inactive but still has to
 * be closed.  Closing a handle whose child has not exited makes libuv forget the pid: it
 * will never reap it, so the owner must (uvcffi._uv.process hands it to a reaper thread
 * that waits with uvc_wait_exited).
 *
 * Seeing the exit without SIGCHLD.  libuv learns of exits from its SIGCHLD handler, a
 * process-wide C handler that any signal.signal(SIGCHLD, ...) replaces (and libuv puts it
 * back only when its last process handle closes): a child that exits meanwhile would never
 * be reported, and its owner would wait forever.  So each child also gets a pidfd
 * (Linux 5.3+) watched by a poll handle; when it becomes readable the child has exited and
 * the watch reaps it (waitpid on that pid) and queues the EXIT itself -- unless libuv's
 * handler did so first in the same iteration, in which case the watch's waitpid finds
 * nothing (ECHILD).  Exactly one EXIT is queued either way, and libuv, finding the pid
 * gone, drops it ("someone else stole the waitpid", process.c).  The watch is part of the
 * process handle (uvc_process_t) and closed with it by uvc_process_close.  Without pidfds
 * (older kernels) only libuv's handler reports exits.
 *
 * What libuv cannot do in the child, a fork hook does.  libuv has no pre-exec callback,
 * but it forks with fork(), which runs pthread_atfork child handlers in the new process
 * before libuv's own child code (signal reset, setsid, dup2 of the stdio slots, chdir,
 * exec).  uvc_spawn points a thread-local at its request for the duration of uv_spawn; the
 * handler (async-signal-safe system calls only) acts only when that is set, so every
 * other fork in the process is untouched.  It does three things Popen does:
 *
 * - close_fds: marks every fd >= 3 close-on-exec (close_range(CLOSE_RANGE_CLOEXEC), else
 *   /proc/self/fd, else every number up to RLIMIT_NOFILE).  libuv then clears the flag on
 *   the fds it places in stdio slots, so exactly 0-2 and the slots (pass_fds) survive exec.
 *   Without it, libuv leaks every fd not marked close-on-exec (Python's own are, PEP 446).
 * - process_group: setpgid(0, pgid) (after setsid() if a new session was also asked for,
 *   Popen's order); a failure is written to a private close-on-exec pipe and the child
 *   exits with 127 before exec, and uvc_spawn reaps it and returns the errno.
 * - umask.
 *
 * Errors: uv_spawn reports exec and chdir failures (ENOENT, EACCES, ...) as its return
 * value, having reaped the failed child itself; the handle must still be closed, which
 * uvc_spawn does (disowned: its CLOSED event carries id 0), so a NULL return leaves
 * nothing behind.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define UVC__ERR(e) (-(e)) /* libuv's codes are negated errnos on Unix */

#define UVC_STDIO_IGNORE (-1)
#define UVC_STDIO_PIPE_IN (-2)     /* a pipe the child reads (its stdin) */
#define UVC_STDIO_PIPE_OUT (-3)    /* a pipe the child writes (its stdout, stderr) */
#define UVC_STDIO_PIPE_DUPLEX (-4)

typedef struct {
  int close_fds;
  int new_session; /* setsid() first (only with pgid: else libuv does it) */
  int pgid;      /* >= 0: setpgid(0, pgid) */
  int umask;     /* >= 0: umask(umask) */
  int err_fd;    /* write end of the private error pipe, or -1 */
} uvc__fork_hook_t;

static __thread uvc__fork_hook_t* uvc__fork_hook;
static uv_once_t uvc__fork_hook_once = UV_ONCE_INIT;

static void uvc__set_cloexec(int fd) {
  int flags = fcntl(fd, F_GETFD);
  if (flags >= 0 && !(flags & FD_CLOEXEC)) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

#if defined(__linux__) && defined(SYS_getdents64)
struct uvc__dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[1];
};
#endif

/* Marks every fd >= lowfd close-on-exec; runs in the forked child. */
static void uvc__cloexec_from(int lowfd) {
  int fd;
  struct rlimit rl;
  long max;
#if defined(__linux__) && defined(SYS_close_range)
  if (syscall(SYS_close_range, (unsigned int) lowfd, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) == 0)
    return;
#endif
#if defined(__linux__) && defined(SYS_getdents64)
  {
    char buf[4096] __attribute__((aligned(8)));
    long n = -1;
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      while ((n = syscall(SYS_getdents64, dir, buf, sizeof(buf))) > 0) {
        long off = 0;
        while (off < n) {
          struct uvc__dirent64* d = (struct uvc__dirent64*) (buf + off);
          const char* p = d->d_name;
          off += d->d_reclen;
          if (*p < '0' || *p > '9') continue;
          fd = 0;
          while (*p >= '0' && *p <= '9') fd = fd * 10 + (*p++ - '0');
          if (fd >= lowfd && fd != dir) uvc__set_cloexec(fd);
        }
      }
      close(dir);
      if (n == 0) return;
    }
  }
#endif
  max = 65536;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    max = (long) rl.rlim_cur;
  for (fd = lowfd; fd < max; fd++) uvc__set_cloexec(fd);
}

static void uvc__fork_hook_child(void) {
  uvc__fork_hook_t* k = uvc__fork_hook;
  int err = 0;
  if (k == NULL) return; /* a fork that is not uv_spawn's in uvc_spawn */
  uvc__fork_hook = NULL;
  if (k->umask >= 0) umask((mode_t) k->umask);
  if (k->pgid >= 0) {
    if (k->new_session && setsid() == -1)
      err = errno;
    else if (setpgid(0, (pid_t) k->pgid) == -1)
      err = errno;
  }
  if (err == 0 && k->close_fds) uvc__cloexec_from(3);
  if (err != 0) {
    ssize_t n;
    if (k->err_fd >= 0) {
      do
        n = write(k->err_fd, &err, sizeof(err));
      while (n == -1 && errno == EINTR);
    }
    _exit(127);
  }
}

static void uvc__fork_hook_register(void) {
  pthread_atfork(NULL, NULL, uvc__fork_hook_child);
}

/* A process handle with its exit watch; `proc` first, so the generic close callback frees
 * the whole. */
typedef struct uvc__exit_watch_s uvc__exit_watch_t;
typedef struct {
  uv_process_t proc;
  uvc__exit_watch_t* watch;
} uvc_process_t;

struct uvc__exit_watch_s {
  uv_poll_t poll;        /* first: the close callback frees the whole */
  int pidfd;
  uvc_process_t* owner;  /* NULL once the owner closed it */
};

static void uvc__exit_cb(uv_process_t* h, int64_t exit_status, int term_signal) {
  uvc__push(UVC_LOOP(h), UVC_EV_EXIT, UVC_ID(h), exit_status, (int64_t) term_signal);
}

static void uvc__exit_watch_close_cb(uv_handle_t* h) {
  uvc__exit_watch_t* w = (uvc__exit_watch_t*) h;
  UVC_LOOP(h)->handles_closed++;
  close(w->pidfd);
  free(w);
}

static void uvc__exit_watch_close(uvc__exit_watch_t* w) {
  w->owner = NULL;
  if (!uv_is_closing((uv_handle_t*) &w->poll))
    uv_close((uv_handle_t*) &w->poll, uvc__exit_watch_close_cb);
}

static void uvc__exit_watch_cb(uv_poll_t* h, int status, int events) {
  uvc__exit_watch_t* w = (uvc__exit_watch_t*) h;
  uvc_process_t* p = w->owner;
  int wstatus;
  pid_t r;
  (void) status;
  (void) events;
  if (p == NULL) return;
  do
    r = waitpid(p->proc.pid, &wstatus, WNOHANG);
  while (r == -1 && errno == EINTR);
  if (r == 0) return; /* not reapable yet: the next readiness will tell */
  uv_poll_stop(h);
  if (r == p->proc.pid) {
    int64_t code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 0;
    int64_t sig = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
    uvc__push(UVC_LOOP(h), UVC_EV_EXIT, UVC_ID(&p->proc), code, sig);
  }
  /* else ECHILD: libuv's own SIGCHLD path reaped it and queued the EXIT already */
}

/* Starts the pidfd watch of a freshly spawned child; without one, libuv's SIGCHLD handler
 * alone reports the exit. */
static void uvc__exit_watch_start(uvc_loop_t* l, uvc_process_t* p) {
#if defined(__linux__) && defined(SYS_pidfd_open)
  uvc__exit_watch_t* w;
  int fd = (int) syscall(SYS_pidfd_open, p->proc.pid, 0); /* close-on-exec by default */
  if (fd < 0) return;
  w = malloc(sizeof(*w));
  if (w == NULL || uv_poll_init(&l->uv, &w->poll, fd) != 0) {
    free(w);
    close(fd);
    return;
  }
  w->pidfd = fd;
  w->owner = p;
  w->poll.data = NULL; /* no Python owner: its events never reach the dispatcher */
  l->handles_opened++;
  if (uv_poll_start(&w->poll, UV_READABLE, uvc__exit_watch_cb) != 0) {
    uvc__exit_watch_close(w);
    return;
  }
  uv_unref((uv_handle_t*) &w->poll); /* the process handle keeps the loop alive */
  p->watch = w;
#else
  (void) l;
  (void) p;
#endif
}

/* Closes a process handle and its exit watch (use this, not uvc_close). */
static void uvc_process_close(uv_process_t* h) {
  uvc_process_t* p = (uvc_process_t*) h;
  if (p->watch != NULL) {
    uvc__exit_watch_close(p->watch);
    p->watch = NULL;
  }
  if (!uv_is_closing((uv_handle_t*) h)) uv_close((uv_handle_t*) h, uvc__close_cb);
}

/* Splits `count` NUL-terminated strings laid end to end into a NULL-terminated array. */
static char** uvc__split(const char* buf, int count) {
  int i;
  char** out = malloc(((size_t) count + 1) * sizeof(char*));
  if (out == NULL) return NULL;
  for (i = 0; i < count; i++) {
    out[i] = (char*) buf;
    buf += strlen(buf) + 1;
  }
  out[count] = NULL;
  return out;
}

/* Reaps a child that must be exiting now (it _exit()ed or was SIGKILLed). */
static void uvc__reap_now(pid_t pid) {
  int status;
  pid_t r;
  do
    r = waitpid(pid, &status, 0);
  while (r == -1 && errno == EINTR);
}

static uv_process_t* uvc_spawn(uvc_loop_t* l, int64_t id, const char* file,
                               const char* argbuf, int argc,
                               const char* envbuf, int envc,
                               const char* cwd, unsigned int flags,
                               int stdio_count, const int* stdio, void** pipes,
                               int close_fds, int new_session, int pgid, int umask_,
                               int* err) {
  uv_process_options_t options;
  uv_stdio_container_t slots_storage[8];
  uv_stdio_container_t* slots = slots_storage;
  uvc__fork_hook_t hook;
  int errpipe[2] = {-1, -1};
  int use_hook;
  int i, r;
  uv_process_t* h;

  memset(&options, 0, sizeof(options));
  options.exit_cb = uvc__exit_cb;
  options.file = file;
  options.cwd = cwd;
  options.flags = flags;
  options.args = uvc__split(argbuf, argc);
  if (envc >= 0) options.env = uvc__split(envbuf, envc);
  if (stdio_count > 8) slots = malloc((size_t) stdio_count * sizeof(*slots));
  if (options.args == NULL || (envc >= 0 && options.env == NULL) || slots == NULL) {
    r = UV_ENOMEM;
    goto fail_options;
  }
  for (i = 0; i < stdio_count; i++) {
    int v = stdio[i];
    if (v >= 0) {
      slots[i].flags = UV_INHERIT_FD;
      slots[i].data.fd = v;
    } else if (v == UVC_STDIO_IGNORE) {
      slots[i].flags = UV_IGNORE;
      slots[i].data.fd = -1;
    } else {
      int kind = UV_CREATE_PIPE;
      if (v == UVC_STDIO_PIPE_IN || v == UVC_STDIO_PIPE_DUPLEX) kind |= UV_READABLE_PIPE;
      if (v == UVC_STDIO_PIPE_OUT || v == UVC_STDIO_PIPE_DUPLEX) kind |= UV_WRITABLE_PIPE;
      if (pipes == NULL || pipes[i] == NULL) {
        r = UV_EINVAL;
        goto fail_options;
      }
      slots[i].flags = (uv_stdio_flags) kind;
      slots[i].data.stream = (uv_stream_t*) pipes[i];
    }
  }
  options.stdio_count = stdio_count;
  options.stdio = slots;

  use_hook = close_fds || pgid >= 0 || umask_ >= 0;
  if (use_hook) {
    uv_once(&uvc__fork_hook_once, uvc__fork_hook_register);
    hook.close_fds = close_fds;
    hook.new_session = new_session;
    hook.pgid = pgid;
    hook.umask = umask_;
    hook.err_fd = -1;
    if (pgid >= 0) {
      /* The only step of the hook that can fail reports through this pipe. */
      if (pipe2(errpipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        r = UVC__ERR(errno);
        goto fail_options;
      }
      hook.err_fd = errpipe[1];
    }
  }

  {
    uvc_process_t* p = malloc(sizeof(*p));
    if (p == NULL) {
      r = UV_ENOMEM;
      goto fail_pipe;
    }
    p->watch = NULL;
    p->proc.data = (void*) (intptr_t) id;
    l->handles_opened++;
    h = &p->proc;
  }

  if (use_hook) uvc__fork_hook = &hook;
  {
    /* fork, then wait for the child to exec: long enough to let other threads run. */
#ifndef PYPY_VERSION
    PyThreadState* ts = PyEval_SaveThread();
    r = uv_spawn(&l->uv, h, &options);
    PyEval_RestoreThread(ts);
#else
    r = uv_spawn(&l->uv, h, &options);
#endif
  }
  uvc__fork_hook = NULL;

  if (r == 0 && errpipe[0] >= 0) {
    int child_err = 0;
    ssize_t n;
    do
      n = read(errpipe[0], &child_err, sizeof(child_err));
    while (n == -1 && errno == EINTR);
    if (n == (ssize_t) sizeof(child_err) && child_err != 0) {
      /* The hook failed and the child _exit()ed before exec: take it back from libuv. */
      pid_t pid = h->pid;
      h->data = NULL;
      uv_close((uv_handle_t*) h, uvc__close_cb); /* forgets the pid: we reap it */
      uvc__reap_now(pid);
      r = UVC__ERR(child_err);
      goto fail_pipe;
    }
  }
  if (r != 0) {
    if (uv_is_active((uv_handle_t*) h)) {
      /* exec succeeded but a stdio pipe could not be opened: the child exists. */
      pid_t pid = h->pid;
      kill(pid, SIGKILL);
      h->data = NULL;
      uv_close((uv_handle_t*) h, uvc__close_cb);
      uvc__reap_now(pid);
    } else {
      h->data = NULL;
      uv_close((uv_handle_t*) h, uvc__close_cb);
    }
    goto fail_pipe;
  }

  uvc__exit_watch_start(l, (uvc_process_t*) h);
  if (errpipe[0] >= 0) close(errpipe[0]);
  if (errpipe[1] >= 0) close(errpipe[1]);
  free(options.args);
  free(options.env);
  if (slots != slots_storage) free(slots);
  return h;

fail_pipe:
  if (errpipe[0] >= 0) close(errpipe[0]);
  if (errpipe[1] >= 0) close(errpipe[1]);
fail_options:
  free(options.args);
  free(options.env);
  if (slots != slots_storage) free(slots);
  *err = r;
  return NULL;
}

static int uvc_process_pid(uv_process_t* h) { return (int) uv_process_get_pid(h); }

/* Sends a signal; only valid before the EXIT event (libuv has not reaped the pid). */
static int uvc_process_kill(uv_process_t* h, int signum) { return uv_process_kill(h, signum); }

/* Blocks, without the GIL, until child `pid` has exited, and leaves it unreaped (a
 * zombie), so that its pid cannot be reused until the caller reaps it.  0 or an error. */
static int uvc_wait_exited(int pid) {
  siginfo_t info;
  int r;
#ifndef PYPY_VERSION
  PyThreadState* ts = PyEval_SaveThread();
#endif
  do
    r = waitid(P_PID, (id_t) pid, &info, WEXITED | WNOWAIT);
  while (r == -1 && errno == EINTR);
  if (r == -1) r = UVC__ERR(errno);
#ifndef PYPY_VERSION
  PyEval_RestoreThread(ts);
#endif
  return r;
}
