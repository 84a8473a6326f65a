/* Pipe handles (docs: pipe.rst): Unix domain sockets and pipes.  Names are passed with
 * their length so that Linux abstract names (starting with a NUL byte) work. */
typedef struct uv_pipe_s uv_pipe_t;
uv_pipe_t* uvc_pipe_new(uvc_loop_t* loop, int64_t id, int ipc, int* err);
int uvc_pipe_open(uv_pipe_t* pipe, int fd);
int uvc_pipe_bind(uv_pipe_t* pipe, const char* name, size_t len);
int uvc_pipe_connect(uv_pipe_t* pipe, int64_t id, const char* name, size_t len);
