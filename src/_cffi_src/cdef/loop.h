/* The event loop (docs: loop.rst) and uvcffi's event queue (glue/uvcffi.h).
 *
 * uvcffi never hands a uv_loop_t to Python: it owns a uvc_loop_t, whose first member is
 * the libuv loop and whose other members are the queue of events collected during the
 * last uvc_run and a few counters. */
typedef struct uv_loop_s uv_loop_t;

typedef enum {
  UV_RUN_DEFAULT = 0,
  UV_RUN_ONCE,
  UV_RUN_NOWAIT
} uv_run_mode;

typedef struct uvc_loop_s {
  int64_t* events;
  size_t nevents;
  int64_t handles_opened;
  int64_t handles_closed;
  int64_t requests_started;
  int64_t requests_finished;
  ...;
} uvc_loop_t;

#define UVC_EV_WIDTH ...
#define UVC_EV_CLOSED ...
#define UVC_EV_TIMER ...
#define UVC_EV_ASYNC ...
#define UVC_EV_POLL ...
#define UVC_EV_SIGNAL ...
#define UVC_EV_IDLE ...
#define UVC_EV_CHECK ...
#define UVC_EV_PREPARE ...
#define UVC_EV_GETADDRINFO ...
#define UVC_EV_GETNAMEINFO ...

uvc_loop_t* uvc_loop_new(int* err);
int uvc_loop_close(uvc_loop_t* loop, int64_t* stats);
int uvc_loop_fork(uvc_loop_t* loop);
int uvc_run(uvc_loop_t* loop, int mode);
uint64_t uvc_now(uvc_loop_t* loop);
void uvc_update_time(uvc_loop_t* loop);
void uvc_stop(uvc_loop_t* loop);
int uvc_backend_fd(uvc_loop_t* loop);
