/* Check handle (docs: check.rst): a callback once per loop iteration. */
typedef struct uv_check_s uv_check_t;
uv_check_t* uvc_check_new(uvc_loop_t* loop, int64_t id, int* err);
int uvc_check_start(uv_check_t* handle);
int uvc_check_stop(uv_check_t* handle);
