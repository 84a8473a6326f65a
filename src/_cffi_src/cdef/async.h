/* Async handle (docs: async.rst): wakes the loop from another thread.  uvc_async_send is
 * the only call that is safe from any thread; several sends may coalesce into one event. */
typedef struct uv_async_s uv_async_t;
uv_async_t* uvc_async_new(uvc_loop_t* loop, int64_t id, int* err);
int uvc_async_send(uv_async_t* handle);
