/* Idle handle (docs: idle.rst): a callback once per loop iteration. */
typedef struct uv_idle_s uv_idle_t;
uv_idle_t* uvc_idle_new(uvc_loop_t* loop, int64_t id, int* err);
int uvc_idle_start(uv_idle_t* handle);
int uvc_idle_stop(uv_idle_t* handle);
