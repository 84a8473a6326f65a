/* Base handle (docs: handle.rst).  Python sees handles only as opaque pointers; every
 * handle is allocated and freed by the glue, which frees it in its close callback. */
typedef enum {
  UV_UNKNOWN_HANDLE = 0,
  UV_ASYNC, UV_CHECK, UV_FS_EVENT, UV_FS_POLL, UV_HANDLE, UV_IDLE, UV_NAMED_PIPE,
  UV_POLL, UV_PREPARE, UV_PROCESS, UV_STREAM, UV_TCP, UV_TIMER, UV_TTY, UV_UDP,
  UV_SIGNAL, UV_FILE, UV_HANDLE_TYPE_MAX
} uv_handle_type;

/* Any uv_*_t pointer is accepted: cffi converts typed pointers to void* for free. */
void uvc_close(void* handle);
/* For a handle whose last id may have been reused: its CLOSED event carries id 0. */
void uv_ref(void* handle);
void uv_unref(void* handle);
int uv_is_active(void* handle);
int uv_is_closing(void* handle);
