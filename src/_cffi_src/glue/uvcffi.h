/* uvcffi's C glue: the event queue that libuv callbacks fill and Python drains.
 *
 * No Python code ever runs on libuv's stack.  Every libuv callback that uvcffi installs is
 * a static C function in uvcffi.c that appends one event -- four int64 values
 * (kind, id, a, b) -- to an array owned by the loop, and returns.  `uvc_run` runs one
 * libuv iteration and returns how many events it collected; Python then reads the whole
 * batch with one `ffi.unpack` and dispatches each event by the integer `id` it gave the
 * handle when it created it.  See docs/design.md, "The event queue".
 *
 * Handles are allocated here with malloc and freed here, in their close callback, which
 * also queues a UVC_EV_CLOSED event: libuv's rule that a handle's memory lives until its
 * close callback is kept in C, where no garbage collector can break it.
 */
#ifndef UVCFFI_GLUE_H
#define UVCFFI_GLUE_H

#include <stdint.h>
#include "uv.h"

/* The stamp checked at import: bump it whenever the cdef or this glue changes shape. */
#define UVC_GLUE_VERSION 9

enum {
  UVC_EV_CLOSED = 1,      /* (CLOSED, id, handle type, 0): memory freed, id reusable */
  UVC_EV_TIMER = 2,       /* (TIMER, id, 0, 0) */
  UVC_EV_ASYNC = 3,       /* (ASYNC, id, 0, 0) */
  UVC_EV_POLL = 4,        /* (POLL, id, status, events) */
  UVC_EV_SIGNAL = 5,      /* (SIGNAL, id, signum, 0) */
  UVC_EV_IDLE = 6,        /* (IDLE, id, 0, 0) */
  UVC_EV_CHECK = 7,       /* (CHECK, id, 0, 0) */
  UVC_EV_PREPARE = 8,     /* (PREPARE, id, 0, 0) */
  UVC_EV_GETADDRINFO = 9, /* (GETADDRINFO, id, status, request pointer) */
  UVC_EV_GETNAMEINFO = 10, /* (GETNAMEINFO, id, status, request pointer) */
  UVC_EV_READ = 11,        /* (READ, stream id, nread or error, arena offset) */
  UVC_EV_WRITE = 12,       /* (WRITE, request id, status, 0) */
  UVC_EV_CONNECT = 13,     /* (CONNECT, request id, status, 0) */
  UVC_EV_SHUTDOWN = 14,    /* (SHUTDOWN, request id, status, 0) */
  UVC_EV_CONNECTION = 15,  /* (CONNECTION, server id, status, 0): accept one now */
  UVC_EV_UDP_RECV = 16,    /* (UDP_RECV, id, nread or error, arena offset) */
  UVC_EV_UDP_SEND = 17,    /* (UDP_SEND, id, status, 0) */
  UVC_EV_EXIT = 18         /* (EXIT, process id, exit status, terminating signal) */
};

/* Reads land in one per-loop arena that is reset at every uvc_run: a read costs no
 * allocation, Python copies each chunk out once (to bytes) while dispatching, and when the
 * arena is full libuv leaves the data in the kernel until the next iteration. */
#define UVC_ARENA_SIZE (256 * 1024)

typedef struct uvc_loop_s {
  uv_loop_t uv;          /* first, so a uv_loop_t* is also a uvc_loop_t* */
  int64_t* events;       /* UVC_EV_WIDTH int64 per event */
  size_t nevents;        /* events collected by the last uvc_run */
  size_t capacity;       /* events the array can hold */
  int64_t handles_opened;
  int64_t handles_closed;
  int64_t requests_started;
  int64_t requests_finished;
  char* arena;           /* UVC_ARENA_SIZE bytes */
  size_t arena_used;
  int closing;           /* in uvc_loop_close: nobody will read the events any more */
  /* Quiet iterations (see uvc_run): with exactly `quiet_nfds` fds watched and at most the
   * `quiet_timer` pending, a UV_RUN_NOWAIT iteration has nothing to report and is skipped.
   * quiet_nfds == 0 (the default) never skips; `poll_always` turns skipping off while the
   * owner needs every iteration to poll (signal handlers). */
  unsigned int quiet_nfds;
  uv_timer_t* quiet_timer;
  int poll_always;
  int64_t polls_skipped; /* NOWAIT iterations skipped so far */
} uvc_loop_t;

/* A stream handle with room for a caller-provided read buffer (BufferedProtocol). */
typedef struct uvc_stream_s {
  union {
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_tty_t tty;
  } h;
  char* rbuf;            /* if set, reads go here instead of the arena */
  size_t rbuf_len;
} uvc_stream_t;

#define UVC_EV_WIDTH 4

#endif
