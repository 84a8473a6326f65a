/* Timer handle (docs: timer.rst).  Starting a timer does not update the loop's idea of
 * "now"; resolution is one millisecond. */
typedef struct uv_timer_s uv_timer_t;
uv_timer_t* uvc_timer_new(uvc_loop_t* loop, int64_t id, int* err);
int uvc_timer_start(uv_timer_t* timer, int64_t id, uint64_t timeout, uint64_t repeat);
int uvc_timer_start_at(uv_timer_t* timer, int64_t id, uint64_t due);
int uvc_timer_stop(uv_timer_t* timer);
/* The loop's present fds, plus `timer` (its deadline timer), are its quiet state: a
 * UV_RUN_NOWAIT uvc_run in that state, which could report nothing, returns at once. */
void uvc_loop_mark_quiet(uvc_loop_t* loop, uv_timer_t* timer);
