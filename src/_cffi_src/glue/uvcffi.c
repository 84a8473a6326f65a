/* uvcffi's C glue.  Read uvcffi.h first: it says how events flow. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "uvcffi.h"

/* ------------------------------------------------------------------------------------ */
/* The event queue                                                                       */
/* ------------------------------------------------------------------------------------ */

/* Losing an event would lose a callback, which the loop's contract forbids; running out of
 * memory while growing the queue is therefore fatal, as it is for libuv itself. */
static void uvc__push(uvc_loop_t* l, int64_t kind, int64_t id, int64_t a, int64_t b) {
  int64_t* e;
  if (l->nevents == l->capacity) {
    size_t cap = l->capacity ? l->capacity * 2 : 256;
    int64_t* grown = realloc(l->events, cap * UVC_EV_WIDTH * sizeof(int64_t));
    if (grown == NULL) {
      fprintf(stderr, "uvcffi: out of memory growing the event queue\n");
      abort();
    }
    l->events = grown;
    l->capacity = cap;
  }
  e = l->events + l->nevents * UVC_EV_WIDTH;
  e[0] = kind;
  e[1] = id;
  e[2] = a;
  e[3] = b;
  l->nevents++;
}

#define UVC_LOOP(h) ((uvc_loop_t*) (h)->loop)
#define UVC_ID(h) ((int64_t) (intptr_t) (h)->data)

/* ------------------------------------------------------------------------------------ */
/* Loop                                                                                  */
/* ------------------------------------------------------------------------------------ */

static uvc_loop_t* uvc_loop_new(int* err) {
  uvc_loop_t* l = calloc(1, sizeof(*l));
  if (l == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  /* The arena is allocated on the first read: a loop that never reads (or is only
   * created and closed) does not pay for 256 KiB of mmap'd memory. */
  *err = uv_loop_init(&l->uv);
  if (*err != 0) {
    free(l);
    return NULL;
  }
  return l;
}

/* Runs one libuv iteration and returns the number of events queued.  The GIL is released
 * for the modes that may block (the cffi wrappers of this module keep it, see
 * build_ffi.py); UV_RUN_NOWAIT never blocks, so it keeps the GIL and saves two atomic
 * operations per iteration. */
static int uvc__queue_empty(const struct uv__queue* q) { return q->next == q; }

/* Quiet iterations.  The Python loop asks for a UV_RUN_NOWAIT iteration whenever it has
 * callbacks ready, that is once per callback in a call_soon chain, and each one costs an
 * epoll_wait(0) system call: a third of such a callback's time.  When libuv watches no fd
 * but the loop's own (`quiet_nfds`, recorded by uvc_loop_mark_quiet: the async wake-up
 * and the signal pipe), has no request in flight, nothing pending or closing, and no
 * timer but the deadline timer, that iteration could report nothing the Python side acts
 * on:
 *   - the async handle's only job is to end a blocking poll (call_soon_threadsafe has
 *     already put its callback on the ready queue);
 *   - the deadline timer only matters to a blocking poll (due Python timers are found in
 *     Python, from the clock), and an unfired one stays armed for its absolute due time;
 *   - bytes on the signal pipe wake a blocking poll for Python's own handlers, which run
 *     at the next bytecode anyway; when add_signal_handler callbacks depend on reading
 *     them, the owner sets `poll_always`.
 * So the iteration is skipped, and I/O is seen exactly as before: any watched fd, timer,
 * request or closing handle of its own makes every iteration poll again. */
static int uvc__nothing_to_poll(const uvc_loop_t* l) {
  const uv_loop_t* uv = &l->uv;
  if (l->quiet_nfds == 0 || l->poll_always || uv->nfds != l->quiet_nfds) return 0;
  if (uv->active_reqs.count != 0 || uv->closing_handles != NULL) return 0;
  if (!uvc__queue_empty(&uv->pending_queue) || !uvc__queue_empty(&uv->idle_handles) ||
      !uvc__queue_empty(&uv->prepare_handles) || !uvc__queue_empty(&uv->check_handles))
    return 0;
  if (uv->timer_heap.nelts == 0) return 1;
  return uv->timer_heap.nelts == 1 && l->quiet_timer != NULL &&
         uv_is_active((const uv_handle_t*) l->quiet_timer);
}

/* Records the loop's present state (its own fds, and `timer`, its deadline timer, which
 * may be pending) as quiet; see uvc__nothing_to_poll. */
static void uvc_loop_mark_quiet(uvc_loop_t* l, uv_timer_t* timer) {
  l->quiet_nfds = l->uv.nfds;
  l->quiet_timer = timer;
}

static int uvc_run(uvc_loop_t* l, int mode) {
  l->nevents = 0;
  l->arena_used = 0;
  if (mode == UV_RUN_NOWAIT) {
    if (uvc__nothing_to_poll(l)) {
      l->polls_skipped++;
      return 0;
    }
    uv_run(&l->uv, UV_RUN_NOWAIT);
  } else {
    /* uv_run(ONCE) computes how long to sleep from its cached "now", which it refreshes
     * only after polling; Python ran since the last iteration, maybe for long, so a timer
     * already due would otherwise still be slept for (as long as that Python code ran). */
    uv_update_time(&l->uv);
#ifndef PYPY_VERSION
    PyThreadState* ts = PyEval_SaveThread();
    uv_run(&l->uv, (uv_run_mode) mode);
    PyEval_RestoreThread(ts);
#else
    uv_run(&l->uv, (uv_run_mode) mode);
#endif
  }
  return (int) l->nevents;
}

static void uvc__close_cb(uv_handle_t* h) {
  uvc_loop_t* l = UVC_LOOP(h);
  uvc__push(l, UVC_EV_CLOSED, UVC_ID(h), (int64_t) h->type, 0);
  l->handles_closed++;
  free(h);
}

static void uvc__walk_close(uv_handle_t* h, void* arg) {
  if (!uv_is_closing(h)) {
    uv_close(h, uvc__close_cb);
    if (arg != NULL) (*(int64_t*) arg)++;
  }
}

/* Closes every handle still open, runs the loop until libuv has called every close
 * callback and finished every request, then frees the loop.  Requests on the thread pool
 * (getaddrinfo) cannot be interrupted once they started, so this may wait for them; it
 * does so without the GIL.  `stats` receives, in order: handles opened, handles closed,
 * handles that were still open (closed here by the walk), requests started, requests
 * finished.  Returns 0, or a libuv error if uv_loop_close still refuses. */
static int uvc_loop_close(uvc_loop_t* l, int64_t* stats) {
  int r;
  int64_t forgotten = 0;
  l->closing = 1;
  uv_walk(&l->uv, uvc__walk_close, &forgotten);
  for (;;) {
    l->nevents = 0;
#ifndef PYPY_VERSION
    {
      PyThreadState* ts = PyEval_SaveThread();
      uv_run(&l->uv, UV_RUN_DEFAULT);
      PyEval_RestoreThread(ts);
    }
#else
    uv_run(&l->uv, UV_RUN_DEFAULT);
#endif
    r = uv_loop_close(&l->uv);
    if (r != UV_EBUSY) break;
    uv_walk(&l->uv, uvc__walk_close, &forgotten);
  }
  stats[0] = l->handles_opened;
  stats[1] = l->handles_closed;
  stats[2] = forgotten;
  stats[3] = l->requests_started;
  stats[4] = l->requests_finished;
  free(l->events);
  free(l->arena);
  free(l);
  return r;
}

/* Recycling: the asyncio loop keeps a closed loop's libuv state (epoll and io_uring
 * instances, signal pipe, and the handles listed in `keep`) for the next loop it creates,
 * because setting those up and tearing them down is most of the cost of a short-lived
 * loop (see _loop/kit.py).  This closes every other handle and runs the loop until their
 * close callbacks and every request are done -- as uvc_loop_close does, minus freeing --
 * and leaves the loop ready for a new owner.  The kept handles are unreferenced while it
 * runs, so that uv_run can return, and get their reference back afterwards.
 *
 * The result must be a loop as quiet as a new one, or it is refused (UV_EBUSY) and must be
 * closed: every handle but the kept ones gone, every request finished, and libuv's SIGCHLD
 * watcher stopped (libuv stops it with the last process handle; were it left running in a
 * loop nobody runs, every SIGCHLD of the process would write to a pipe nobody reads).
 * `stats` as for uvc_loop_close (counting over the loop's whole life). */
typedef struct {
  uv_handle_t** keep;
  int nkeep;
  int64_t forgotten;
} uvc__recycle_walk_t;

static void uvc__walk_close_unkept(uv_handle_t* h, void* arg) {
  uvc__recycle_walk_t* w = arg;
  int i;
  for (i = 0; i < w->nkeep; i++)
    if (w->keep[i] == h) return;
  if (!uv_is_closing(h)) {
    uv_close(h, uvc__close_cb);
    w->forgotten++;
  }
}

#define UVC_RECYCLE_MAX_KEEP 8

static int uvc_loop_recycle(uvc_loop_t* l, void** keep, int nkeep, int64_t* stats) {
  uvc__recycle_walk_t w;
  int refs[UVC_RECYCLE_MAX_KEEP];
  int i;
  if (nkeep < 0 || nkeep > UVC_RECYCLE_MAX_KEEP) return UV_EINVAL;
  w.keep = (uv_handle_t**) keep;
  w.nkeep = nkeep;
  w.forgotten = 0;
  l->closing = 1;
  uv_walk(&l->uv, uvc__walk_close_unkept, &w);
  for (i = 0; i < nkeep; i++) {
    refs[i] = uv_has_ref(w.keep[i]);
    uv_unref(w.keep[i]);
  }
  l->nevents = 0;
#ifndef PYPY_VERSION
  {
    PyThreadState* ts = PyEval_SaveThread();
    uv_run(&l->uv, UV_RUN_DEFAULT);
    PyEval_RestoreThread(ts);
  }
#else
  uv_run(&l->uv, UV_RUN_DEFAULT);
#endif
  for (i = 0; i < nkeep; i++)
    if (refs[i]) uv_ref(w.keep[i]);
  l->nevents = 0;
  l->closing = 0;
  stats[0] = l->handles_opened;
  stats[1] = l->handles_closed;
  stats[2] = w.forgotten;
  stats[3] = l->requests_started;
  stats[4] = l->requests_finished;
  if (l->handles_opened - l->handles_closed != nkeep ||
      l->requests_started != l->requests_finished ||
      uv_is_active((uv_handle_t*) &l->uv.child_watcher))
    return UV_EBUSY;
  return 0;
}

static int uvc_loop_fork(uvc_loop_t* l) { return uv_loop_fork(&l->uv); }
static uint64_t uvc_now(uvc_loop_t* l) { return uv_now(&l->uv); }
static void uvc_update_time(uvc_loop_t* l) { uv_update_time(&l->uv); }
static void uvc_stop(uvc_loop_t* l) { uv_stop(&l->uv); }
static int uvc_backend_fd(uvc_loop_t* l) { return uv_backend_fd(&l->uv); }
/* The read arena, allocated on first use; NULL if that allocation failed. */
static char* uvc_arena(uvc_loop_t* l) {
  if (l->arena == NULL) l->arena = malloc(UVC_ARENA_SIZE);
  return l->arena;
}
static size_t uvc_arena_size(void) { return UVC_ARENA_SIZE; }

/* ------------------------------------------------------------------------------------ */
/* Handles in general                                                                    */
/* ------------------------------------------------------------------------------------ */

static void* uvc__handle_alloc(uvc_loop_t* l, uv_handle_type type, int64_t id) {
  uv_handle_t* h = malloc(uv_handle_size(type));
  if (h == NULL) return NULL;
  h->data = (void*) (intptr_t) id;
  l->handles_opened++;
  return h;
}

/* For a handle whose init failed: libuv never saw it, so there is no close callback. */
static void uvc__handle_abort(uvc_loop_t* l, void* h) {
  l->handles_opened--;
  free(h);
}

/* Closing is the only way a handle's memory is freed; it is safe to call more than once. */
static void uvc_close(void* handle) {
  uv_handle_t* h = handle;
  if (!uv_is_closing(h)) uv_close(h, uvc__close_cb);
}

/* ------------------------------------------------------------------------------------ */
/* Timer                                                                                 */
/* ------------------------------------------------------------------------------------ */

static void uvc__timer_cb(uv_timer_t* h) {
  uvc__push(UVC_LOOP(h), UVC_EV_TIMER, UVC_ID(h), 0, 0);
}

static uv_timer_t* uvc_timer_new(uvc_loop_t* l, int64_t id, int* err) {
  uv_timer_t* h = uvc__handle_alloc(l, UV_TIMER, id);
  if (h == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  *err = uv_timer_init(&l->uv, h);
  if (*err) {
    uvc__handle_abort(l, h);
    return NULL;
  }
  h->data = (void*) (intptr_t) id;  /* uv_timer_init clears nothing, but be explicit */
  return h;
}

/* Arms a timer, stamping it with the id its events carry. */
static int uvc_timer_start(uv_timer_t* h, int64_t id, uint64_t timeout, uint64_t repeat) {
  h->data = (void*) (intptr_t) id;
  return uv_timer_start(h, uvc__timer_cb, timeout, repeat);
}

/* Arms a one-shot timer for an absolute due time in libuv's clock (milliseconds of
 * CLOCK_MONOTONIC, the clock of time.monotonic()).  libuv adds the timeout to its cached
 * loop time, which lags the real clock; measuring from that same cached value makes the
 * timer due at exactly `due`, so it can never fire before it by the real clock. */
static int uvc_timer_start_at(uv_timer_t* h, int64_t id, uint64_t due) {
  uint64_t now = uv_now(h->loop);
  h->data = (void*) (intptr_t) id;
  return uv_timer_start(h, uvc__timer_cb, due > now ? due - now : 0, 0);
}

static int uvc_timer_stop(uv_timer_t* h) { return uv_timer_stop(h); }

/* ------------------------------------------------------------------------------------ */
/* Loop watchers: idle, check, prepare                                                   */
/* ------------------------------------------------------------------------------------ */

#define UVC_LOOP_WATCHER(name, TYPE, EV)                                          \
  static void uvc__##name##_cb(uv_##name##_t* h) {                                \
    uvc__push(UVC_LOOP(h), EV, UVC_ID(h), 0, 0);                                  \
  }                                                                                \
  static uv_##name##_t* uvc_##name##_new(uvc_loop_t* l, int64_t id, int* err) {   \
    uv_##name##_t* h = uvc__handle_alloc(l, TYPE, id);                            \
    if (h == NULL) {                                                               \
      *err = UV_ENOMEM;                                                            \
      return NULL;                                                                 \
    }                                                                              \
    *err = uv_##name##_init(&l->uv, h);                                            \
    if (*err) {                                                                    \
      uvc__handle_abort(l, h);                                                     \
      return NULL;                                                                 \
    }                                                                              \
    return h;                                                                      \
  }                                                                                \
  static int uvc_##name##_start(uv_##name##_t* h) {                               \
    return uv_##name##_start(h, uvc__##name##_cb);                                 \
  }                                                                                \
  static int uvc_##name##_stop(uv_##name##_t* h) { return uv_##name##_stop(h); }

UVC_LOOP_WATCHER(idle, UV_IDLE, UVC_EV_IDLE)
UVC_LOOP_WATCHER(check, UV_CHECK, UVC_EV_CHECK)
UVC_LOOP_WATCHER(prepare, UV_PREPARE, UVC_EV_PREPARE)

/* ------------------------------------------------------------------------------------ */
/* Async                                                                                 */
/* ------------------------------------------------------------------------------------ */

static void uvc__async_cb(uv_async_t* h) {
  uvc__push(UVC_LOOP(h), UVC_EV_ASYNC, UVC_ID(h), 0, 0);
}

static uv_async_t* uvc_async_new(uvc_loop_t* l, int64_t id, int* err) {
  uv_async_t* h = uvc__handle_alloc(l, UV_ASYNC, id);
  if (h == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  *err = uv_async_init(&l->uv, h, uvc__async_cb);
  if (*err) {
    uvc__handle_abort(l, h);
    return NULL;
  }
  return h;
}

/* Thread-safe and non-blocking: the one call another thread may make into a loop. */
static int uvc_async_send(uv_async_t* h) { return uv_async_send(h); }

/* ------------------------------------------------------------------------------------ */
/* Poll                                                                                  */
/* ------------------------------------------------------------------------------------ */

static void uvc__poll_cb(uv_poll_t* h, int status, int events) {
  uvc__push(UVC_LOOP(h), UVC_EV_POLL, UVC_ID(h), status, events);
}

static uv_poll_t* uvc_poll_new(uvc_loop_t* l, int fd, int64_t id, int* err) {
  uv_poll_t* h = uvc__handle_alloc(l, UV_POLL, id);
  if (h == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  *err = uv_poll_init(&l->uv, h, fd);
  if (*err) {
    uvc__handle_abort(l, h);
    return NULL;
  }
  return h;
}

static int uvc_poll_start(uv_poll_t* h, int events) {
  return uv_poll_start(h, events, uvc__poll_cb);
}

static int uvc_poll_stop(uv_poll_t* h) { return uv_poll_stop(h); }

/* ------------------------------------------------------------------------------------ */
/* Signal                                                                                */
/* ------------------------------------------------------------------------------------ */

static void uvc__signal_cb(uv_signal_t* h, int signum) {
  uvc__push(UVC_LOOP(h), UVC_EV_SIGNAL, UVC_ID(h), signum, 0);
}

static uv_signal_t* uvc_signal_new(uvc_loop_t* l, int64_t id, int* err) {
  uv_signal_t* h = uvc__handle_alloc(l, UV_SIGNAL, id);
  if (h == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  *err = uv_signal_init(&l->uv, h);
  if (*err) {
    uvc__handle_abort(l, h);
    return NULL;
  }
  return h;
}

static int uvc_signal_start(uv_signal_t* h, int signum) {
  return uv_signal_start(h, uvc__signal_cb, signum);
}

static int uvc_signal_stop(uv_signal_t* h) { return uv_signal_stop(h); }

/* ------------------------------------------------------------------------------------ */
/* DNS requests                                                                          */
/* ------------------------------------------------------------------------------------ */

/* Requests have no close step: the memory is ours from the callback on.  The callback
 * queues the request pointer and Python frees it (uvc_getaddrinfo_free) after reading it. */

static void uvc__getaddrinfo_cb(uv_getaddrinfo_t* req, int status, struct addrinfo* res) {
  uvc_loop_t* l = (uvc_loop_t*) req->loop;
  (void) res; /* also in req->addrinfo */
  l->requests_finished++;
  if (l->closing) {
    /* The event would be discarded, and with it the only way to free the request. */
    if (req->addrinfo != NULL) uv_freeaddrinfo(req->addrinfo);
    free(req);
    return;
  }
  uvc__push(l, UVC_EV_GETADDRINFO, (int64_t) (intptr_t) req->data, status,
            (int64_t) (intptr_t) req);
}

static uv_getaddrinfo_t* uvc_getaddrinfo(uvc_loop_t* l, int64_t id, const char* node,
                                         const char* service, int family, int socktype,
                                         int protocol, int flags, int* err) {
  struct addrinfo hints;
  uv_getaddrinfo_t* req = malloc(sizeof(*req));
  if (req == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = family;
  hints.ai_socktype = socktype;
  hints.ai_protocol = protocol;
  hints.ai_flags = flags;
  req->data = (void*) (intptr_t) id;
  *err = uv_getaddrinfo(&l->uv, req, uvc__getaddrinfo_cb, node, service, &hints);
  if (*err) {
    free(req);
    return NULL;
  }
  l->requests_started++;
  return req;
}

static struct addrinfo* uvc_getaddrinfo_result(uv_getaddrinfo_t* req) {
  return req->addrinfo;
}

static void uvc_getaddrinfo_free(uv_getaddrinfo_t* req) {
  if (req->addrinfo != NULL) uv_freeaddrinfo(req->addrinfo);
  free(req);
}

static void uvc__getnameinfo_cb(uv_getnameinfo_t* req, int status, const char* host,
                                const char* service) {
  uvc_loop_t* l = (uvc_loop_t*) req->loop;
  (void) host;
  (void) service; /* both point into req->host and req->service */
  l->requests_finished++;
  if (l->closing) {
    free(req);
    return;
  }
  uvc__push(l, UVC_EV_GETNAMEINFO, (int64_t) (intptr_t) req->data, status,
            (int64_t) (intptr_t) req);
}

/* `addr` is a numeric IPv4 or IPv6 address; the caller parsed it with uvc_sockaddr_from. */
static uv_getnameinfo_t* uvc_getnameinfo(uvc_loop_t* l, int64_t id,
                                         const struct sockaddr* addr, int flags, int* err) {
  uv_getnameinfo_t* req = malloc(sizeof(*req));
  if (req == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  req->data = (void*) (intptr_t) id;
  *err = uv_getnameinfo(&l->uv, req, uvc__getnameinfo_cb, addr, flags);
  if (*err) {
    free(req);
    return NULL;
  }
  l->requests_started++;
  return req;
}

static const char* uvc_getnameinfo_host(uv_getnameinfo_t* req) { return req->host; }
static const char* uvc_getnameinfo_service(uv_getnameinfo_t* req) { return req->service; }
static void uvc_getnameinfo_free(uv_getnameinfo_t* req) { free(req); }

/* Cancels a request that has not started on the thread pool yet; its callback then runs
 * with UV_ECANCELED.  A request already running finishes normally. */
static int uvc_cancel(void* req) { return uv_cancel((uv_req_t*) req); }

/* ------------------------------------------------------------------------------------ */
/* Socket addresses                                                                      */
/* ------------------------------------------------------------------------------------ */

/* Reads a sockaddr into a numeric host string, port, flowinfo and scope id; returns the
 * family (AF_INET, AF_INET6) or -1 for a family uvcffi does not decode. */
static int uvc_sockaddr_info(const struct sockaddr* sa, char* host, size_t hostlen, int* port,
                             uint32_t* flowinfo, uint32_t* scope_id) {
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in* in = (const struct sockaddr_in*) sa;
    uv_ip4_name(in, host, hostlen);
    *port = ntohs(in->sin_port);
    *flowinfo = 0;
    *scope_id = 0;
    return AF_INET;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6* in6 = (const struct sockaddr_in6*) sa;
    uv_ip6_name(in6, host, hostlen);
    *port = ntohs(in6->sin6_port);
    *flowinfo = ntohl(in6->sin6_flowinfo);
    *scope_id = in6->sin6_scope_id;
    return AF_INET6;
  }
  return -1;
}

/* Fills `storage` from a numeric address; returns 0 or a libuv error (UV_EINVAL). */
static int uvc_sockaddr_from(int family, const char* host, int port, uint32_t flowinfo,
                             uint32_t scope_id, struct sockaddr_storage* storage) {
  int r;
  memset(storage, 0, sizeof(*storage));
  if (family == AF_INET) {
    r = uv_ip4_addr(host, port, (struct sockaddr_in*) storage);
  } else if (family == AF_INET6) {
    struct sockaddr_in6* in6 = (struct sockaddr_in6*) storage;
    r = uv_ip6_addr(host, port, in6);
    if (r == 0) {
      in6->sin6_flowinfo = htonl(flowinfo);
      if (scope_id) in6->sin6_scope_id = scope_id;
    }
  } else {
    r = UV_EAFNOSUPPORT;
  }
  return r;
}

/* ------------------------------------------------------------------------------------ */
/* Version stamp                                                                         */
/* ------------------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------------------ */
/* Streams: tcp, pipe (docs: stream.rst, tcp.rst, pipe.rst)                             */
/* ------------------------------------------------------------------------------------ */

/* Hands out the caller's buffer if one is registered, else the next slice of the arena;
 * a zero-length buffer makes libuv report UV_ENOBUFS and retry on the next iteration. */
static void uvc__alloc_cb(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
  uvc_stream_t* s = (uvc_stream_t*) h;
  uvc_loop_t* l = UVC_LOOP(h);
  size_t avail;
  if (s->rbuf != NULL) {
    buf->base = s->rbuf;
    buf->len = s->rbuf_len;
    return;
  }
  if (uvc_arena(l) == NULL) {
    buf->base = NULL;  /* UV_ENOBUFS: libuv retries on the next iteration */
    buf->len = 0;
    return;
  }
  /* All the arena that is left, not libuv's suggested 64 KiB: a large message is then
   * read in one call, and the read callback hands back what it did not use. */
  (void) suggested;
  avail = UVC_ARENA_SIZE - l->arena_used;
  buf->base = l->arena + l->arena_used;
  buf->len = avail;
  l->arena_used += avail;
}

static void uvc__read_cb(uv_stream_t* h, ssize_t nread, const uv_buf_t* buf) {
  uvc_stream_t* s = (uvc_stream_t*) h;
  uvc_loop_t* l = UVC_LOOP(h);
  int64_t offset = -1;
  if (buf->base != NULL && buf->base != s->rbuf) {
    /* Give back the unused part of the slice: alloc and read come in pairs. */
    size_t used = nread > 0 ? (size_t) nread : 0;
    offset = buf->base - l->arena;
    if (buf->base + buf->len == l->arena + l->arena_used)
      l->arena_used = (size_t) offset + used;
  } else if (buf->base == s->rbuf && buf->base != NULL) {
    offset = -2; /* the data is in the caller's buffer */
  }
  if (nread == 0 || nread == UV_ENOBUFS) return; /* EAGAIN, or arena full: retried */
  uvc__push(l, UVC_EV_READ, UVC_ID(h), (int64_t) nread, offset);
}

static uvc_stream_t* uvc__stream_alloc(uvc_loop_t* l, int64_t id) {
  uvc_stream_t* s = malloc(sizeof(*s));
  if (s == NULL) return NULL;
  s->h.stream.data = (void*) (intptr_t) id;
  s->rbuf = NULL;
  s->rbuf_len = 0;
  l->handles_opened++;
  return s;
}

static uv_tcp_t* uvc_tcp_new(uvc_loop_t* l, int64_t id, int family, int* err) {
  uvc_stream_t* s = uvc__stream_alloc(l, id);
  if (s == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  *err = uv_tcp_init_ex(&l->uv, &s->h.tcp, (unsigned int) family);
  if (*err) {
    uvc__handle_abort(l, s);
    return NULL;
  }
  return &s->h.tcp;
}

static uv_pipe_t* uvc_pipe_new(uvc_loop_t* l, int64_t id, int ipc, int* err) {
  uvc_stream_t* s = uvc__stream_alloc(l, id);
  if (s == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  *err = uv_pipe_init(&l->uv, &s->h.pipe, ipc);
  if (*err) {
    uvc__handle_abort(l, s);
    return NULL;
  }
  return &s->h.pipe;
}

static int uvc_read_start(void* stream) {
  return uv_read_start((uv_stream_t*) stream, uvc__alloc_cb, uvc__read_cb);
}

static int uvc_read_stop(void* stream) { return uv_read_stop((uv_stream_t*) stream); }

/* Reads go to `buf` (len bytes) instead of the arena until called again with NULL. */
static void uvc_stream_set_buffer(void* stream, char* buf, size_t len) {
  uvc_stream_t* s = stream;
  s->rbuf = buf;
  s->rbuf_len = len;
}

/* Writes what the kernel takes now; returns the count (0 if it would block) or an error. */
static int uvc_try_write(void* stream, const char* data, size_t len) {
  uv_buf_t buf;
  int r;
  buf.base = (char*) data;
  buf.len = len;
  r = uv_try_write((uv_stream_t*) stream, &buf, 1);
  return r == UV_EAGAIN ? 0 : r;
}

typedef struct {
  uv_write_t req;
  char data[1];
} uvc__write_t;

static void uvc__write_cb(uv_write_t* req, int status) {
  uvc_loop_t* l = (uvc_loop_t*) req->handle->loop;
  l->requests_finished++;
  uvc__push(l, UVC_EV_WRITE, (int64_t) (intptr_t) req->data, status, 0);
  free(req);
}

/* Queues a write of a copy of `data` (the caller's bytes may move or die: on PyPy a
 * bytes object passed as char* is only valid during the call). */
static int uvc_write(void* stream, int64_t id, const char* data, size_t len) {
  uv_buf_t buf;
  int r;
  uvc__write_t* w = malloc(sizeof(uvc__write_t) + len);
  uvc_loop_t* l = (uvc_loop_t*) ((uv_stream_t*) stream)->loop;
  if (w == NULL) return UV_ENOMEM;
  memcpy(w->data, data, len);
  w->req.data = (void*) (intptr_t) id;
  buf.base = w->data;
  buf.len = len;
  r = uv_write(&w->req, (uv_stream_t*) stream, &buf, 1, uvc__write_cb);
  if (r) {
    free(w);
    return r;
  }
  l->requests_started++;
  return 0;
}

static size_t uvc_write_queue_size(void* stream) {
  return uv_stream_get_write_queue_size((uv_stream_t*) stream);
}

static void uvc__shutdown_cb(uv_shutdown_t* req, int status) {
  uvc_loop_t* l = (uvc_loop_t*) req->handle->loop;
  l->requests_finished++;
  uvc__push(l, UVC_EV_SHUTDOWN, (int64_t) (intptr_t) req->data, status, 0);
  free(req);
}

/* Half-closes the write side once every queued write is done. */
static int uvc_shutdown(void* stream, int64_t id) {
  uv_shutdown_t* req = malloc(sizeof(*req));
  uvc_loop_t* l = (uvc_loop_t*) ((uv_stream_t*) stream)->loop;
  int r;
  if (req == NULL) return UV_ENOMEM;
  req->data = (void*) (intptr_t) id;
  r = uv_shutdown(req, (uv_stream_t*) stream, uvc__shutdown_cb);
  if (r) {
    free(req);
    return r;
  }
  l->requests_started++;
  return 0;
}

static void uvc__connection_cb(uv_stream_t* server, int status) {
  uvc__push(UVC_LOOP(server), UVC_EV_CONNECTION, UVC_ID(server), status, 0);
}

static int uvc_listen(void* stream, int backlog) {
  return uv_listen((uv_stream_t*) stream, backlog, uvc__connection_cb);
}

static int uvc_accept(void* server, void* client) {
  return uv_accept((uv_stream_t*) server, (uv_stream_t*) client);
}

static int uvc_fileno(void* handle) {
  uv_os_fd_t fd;
  int r = uv_fileno((uv_handle_t*) handle, &fd);
  return r ? r : (int) fd;
}

static int uvc_is_readable(void* stream) { return uv_is_readable((uv_stream_t*) stream); }
static int uvc_is_writable(void* stream) { return uv_is_writable((uv_stream_t*) stream); }

static void uvc__connect_cb(uv_connect_t* req, int status) {
  uvc_loop_t* l = (uvc_loop_t*) req->handle->loop;
  l->requests_finished++;
  uvc__push(l, UVC_EV_CONNECT, (int64_t) (intptr_t) req->data, status, 0);
  free(req);
}

static int uvc_tcp_connect(uv_tcp_t* tcp, int64_t id, const struct sockaddr* addr) {
  uv_connect_t* req = malloc(sizeof(*req));
  int r;
  if (req == NULL) return UV_ENOMEM;
  req->data = (void*) (intptr_t) id;
  r = uv_tcp_connect(req, tcp, addr, uvc__connect_cb);
  if (r) {
    free(req);
    return r;
  }
  ((uvc_loop_t*) tcp->loop)->requests_started++;
  return 0;
}

/* `name` may start with a NUL byte (Linux abstract namespace), hence the explicit length.
 * Errors are reported through the CONNECT event, as libuv does for pipes. */
static int uvc_pipe_connect(uv_pipe_t* pipe, int64_t id, const char* name, size_t len) {
  uv_connect_t* req = malloc(sizeof(*req));
  int r;
  if (req == NULL) return UV_ENOMEM;
  req->data = (void*) (intptr_t) id;
  r = uv_pipe_connect2(req, pipe, name, len, UV_PIPE_NO_TRUNCATE, uvc__connect_cb);
  if (r) {
    free(req);
    return r;
  }
  ((uvc_loop_t*) pipe->loop)->requests_started++;
  return 0;
}

static int uvc_tcp_open(uv_tcp_t* tcp, int fd) { return uv_tcp_open(tcp, (uv_os_sock_t) fd); }
static int uvc_pipe_open(uv_pipe_t* pipe, int fd) { return uv_pipe_open(pipe, fd); }
static int uvc_tcp_bind(uv_tcp_t* tcp, const struct sockaddr* addr, unsigned int flags) {
  return uv_tcp_bind(tcp, addr, flags);
}
static int uvc_pipe_bind(uv_pipe_t* pipe, const char* name, size_t len) {
  return uv_pipe_bind2(pipe, name, len, UV_PIPE_NO_TRUNCATE);
}
static int uvc_tcp_nodelay(uv_tcp_t* tcp, int enable) { return uv_tcp_nodelay(tcp, enable); }

static int uvc_tcp_getsockname(uv_tcp_t* tcp, struct sockaddr_storage* out) {
  int len = (int) sizeof(*out);
  return uv_tcp_getsockname(tcp, (struct sockaddr*) out, &len);
}

static int uvc_tcp_getpeername(uv_tcp_t* tcp, struct sockaddr_storage* out) {
  int len = (int) sizeof(*out);
  return uv_tcp_getpeername(tcp, (struct sockaddr*) out, &len);
}

/* Aborts the connection with a RST instead of a FIN (transport.abort()). */
static int uvc_tcp_close_reset(uv_tcp_t* tcp) {
  return uv_tcp_close_reset(tcp, uvc__close_cb);
}

static int uvc_glue_version(void) { return UVC_GLUE_VERSION; }
static unsigned int uvc_built_uv_version(void) { return UV_VERSION_HEX; }
