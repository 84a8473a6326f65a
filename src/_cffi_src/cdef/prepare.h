/* Prepare handle (docs: prepare.rst): a callback once per loop iteration. */
typedef struct uv_prepare_s uv_prepare_t;
uv_prepare_t* uvc_prepare_new(uvc_loop_t* loop, int64_t id, int* err);
int uvc_prepare_start(uv_prepare_t* handle);
int uvc_prepare_stop(uv_prepare_t* handle);
