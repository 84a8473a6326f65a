/* Signal handle (docs: signal.rst).  libuv installs its own C signal handlers; the
 * asyncio loop uses Python's signal module with a wakeup fd instead (see
 * uvcffi/_loop/signals.py), and this handle is here for users of the low-level layer. */
typedef struct uv_signal_s uv_signal_t;
uv_signal_t* uvc_signal_new(uvc_loop_t* loop, int64_t id, int* err);
int uvc_signal_start(uv_signal_t* handle, int signum);
int uvc_signal_stop(uv_signal_t* handle);
