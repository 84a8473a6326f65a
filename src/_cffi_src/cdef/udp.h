/* UDP handles (docs: udp.rst).
 *
 * Events: UDP_RECV (id, nread, offset | addrlen << 32): the datagram is nread bytes (0 for
 * an empty one) at that offset of the read arena, the sender's struct sockaddr (addrlen
 * bytes) at the next multiple of 8 after it; (id, error, -1) for a receive error.
 * UDP_SEND (id, status, 0): one queued send finished.  glue/udp.c has the details. */
typedef struct uv_udp_s uv_udp_t;
#define UV_UDP_IPV6ONLY ...
#define UV_UDP_REUSEADDR ...
#define UV_UDP_REUSEPORT ...
uv_udp_t* uvc_udp_new(uvc_loop_t* loop, int64_t id, int family, int* err);
int uvc_udp_open(uv_udp_t* udp, int fd);
int uvc_udp_bind(uv_udp_t* udp, const struct sockaddr* addr, unsigned int flags);
int uvc_udp_connect(uv_udp_t* udp, const struct sockaddr* addr);
int uvc_udp_recv_start(uv_udp_t* udp);
int uvc_udp_recv_stop(uv_udp_t* udp);
int uvc_udp_try_send(uv_udp_t* udp, const char* data, size_t len, const struct sockaddr* addr);
int uvc_udp_send(uv_udp_t* udp, int64_t id, const char* data, size_t len,
                 const struct sockaddr* addr);
int uvc_udp_getsockname(uv_udp_t* udp, struct sockaddr_storage* out);
int uvc_udp_getpeername(uv_udp_t* udp, struct sockaddr_storage* out);
int uvc_udp_set_broadcast(uv_udp_t* udp, int on);
int uvc_udp_set_ttl(uv_udp_t* udp, int ttl);
size_t uvc_udp_send_queue_size(uv_udp_t* udp);
size_t uvc_udp_send_queue_count(uv_udp_t* udp);
