/* Stream handles (docs: stream.rst), the common half of tcp and pipe.  All functions take
 * any stream pointer (uv_tcp_t*, uv_pipe_t*) as void*.
 *
 * Events: READ (nread > 0 with the data at that offset of the arena, or offset -2 when it
 * went to the buffer set with uvc_stream_set_buffer; nread < 0 is an error, UV_EOF at end
 * of stream), WRITE and SHUTDOWN (request id, status), CONNECTION (server id, status). */
int uvc_read_start(void* stream);
int uvc_read_stop(void* stream);
void uvc_stream_set_buffer(void* stream, char* buf, size_t len);
int uvc_try_write(void* stream, const char* data, size_t len);
int uvc_write(void* stream, int64_t id, const char* data, size_t len);
size_t uvc_write_queue_size(void* stream);
int uvc_shutdown(void* stream, int64_t id);
int uvc_listen(void* stream, int backlog);
int uvc_accept(void* server, void* client);
int uvc_fileno(void* handle);
int uvc_is_readable(void* stream);
int uvc_is_writable(void* stream);
