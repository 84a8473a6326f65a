/* Process handles (docs: process.rst).  glue/process.c has the details.
 *
 * uvc_spawn: `argbuf` holds `argc` NUL-terminated strings end to end (argv, argv[0]
 * first), `envbuf` `envc` of them (envc -1: inherit the environment); each of the
 * `stdio_count` slots is an fd to inherit as that slot's number, UVC_STDIO_IGNORE, or a
 * UVC_STDIO_PIPE_* kind with its uv_pipe_t at the same index of `pipes`.  close_fds,
 * new_session (with pgid), pgid (-1: none) and umask (-1: none) are done in the child by a
 * fork hook.  NULL with *err set on failure, with nothing left to close.
 *
 * Events: EXIT (id, exit status, terminating signal) once the child was reaped, by libuv's
 * SIGCHLD handler or by the handle's pidfd watch, whichever sees it first. */
typedef struct uv_process_s uv_process_t;
#define UV_PROCESS_DETACHED ...
#define UVC_STDIO_IGNORE ...
#define UVC_STDIO_PIPE_IN ...
#define UVC_STDIO_PIPE_OUT ...
#define UVC_STDIO_PIPE_DUPLEX ...
uv_process_t* uvc_spawn(uvc_loop_t* loop, int64_t id, const char* file,
                        const char* argbuf, int argc, const char* envbuf, int envc,
                        const char* cwd, unsigned int flags,
                        int stdio_count, const int* stdio, void** pipes,
                        int close_fds, int new_session, int pgid, int umask,
                        int* err);
/* Closes the handle and its exit watch: use this, not uvc_close. */
void uvc_process_close(uv_process_t* process);
int uvc_process_pid(uv_process_t* process);
int uvc_process_kill(uv_process_t* process, int signum);
/* Blocks without the GIL until child `pid` exits, leaving it unreaped. */
int uvc_wait_exited(int pid);
