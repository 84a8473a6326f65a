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
static int uvc_run(uvc_loop_t* l, int mode) {
  l->nevents = 0;
  if (mode == UV_RUN_NOWAIT) {
    uv_run(&l->uv, UV_RUN_NOWAIT);
  } else {
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
  free(l);
  return r;
}

static int uvc_loop_fork(uvc_loop_t* l) { return uv_loop_fork(&l->uv); }
static uint64_t uvc_now(uvc_loop_t* l) { return uv_now(&l->uv); }
static void uvc_update_time(uvc_loop_t* l) { uv_update_time(&l->uv); }
static void uvc_stop(uvc_loop_t* l) { uv_stop(&l->uv); }
static int uvc_backend_fd(uvc_loop_t* l) { return uv_backend_fd(&l->uv); }

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

/* Closes a handle that no Python object owns any more (a pooled timer): its id may
 * already belong to someone else, so the CLOSED event must carry id 0, which is never
 * handed out and which the dispatcher ignores. */
static void uvc_close_disowned(void* handle) {
  uv_handle_t* h = handle;
  h->data = NULL;
  uvc_close(h);
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

/* One call to (re)arm a timer under a new id: pooled timers are reused for many
 * TimerHandles, each with its own id, so a stale event can never reach a new owner. */
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

static int uvc_glue_version(void) { return UVC_GLUE_VERSION; }
static unsigned int uvc_built_uv_version(void) { return UV_VERSION_HEX; }
