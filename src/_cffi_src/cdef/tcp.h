/* TCP handles (docs: tcp.rst). */
typedef struct uv_tcp_s uv_tcp_t;
#define UV_TCP_IPV6ONLY ...
#define UV_TCP_REUSEPORT ...
uv_tcp_t* uvc_tcp_new(uvc_loop_t* loop, int64_t id, int family, int* err);
int uvc_tcp_open(uv_tcp_t* tcp, int fd);
int uvc_tcp_bind(uv_tcp_t* tcp, const struct sockaddr* addr, unsigned int flags);
int uvc_tcp_connect(uv_tcp_t* tcp, int64_t id, const struct sockaddr* addr);
int uvc_tcp_nodelay(uv_tcp_t* tcp, int enable);
int uvc_tcp_getsockname(uv_tcp_t* tcp, struct sockaddr_storage* out);
int uvc_tcp_getpeername(uv_tcp_t* tcp, struct sockaddr_storage* out);
int uvc_tcp_close_reset(uv_tcp_t* tcp);
