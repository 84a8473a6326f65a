/* DNS utility functions (docs: dns.rst): getaddrinfo and getnameinfo run on libuv's thread
 * pool; their completion is queued as an event carrying the request pointer. */
typedef struct uv_getaddrinfo_s uv_getaddrinfo_t;
typedef struct uv_getnameinfo_s uv_getnameinfo_t;

struct addrinfo {
  int ai_flags;
  int ai_family;
  int ai_socktype;
  int ai_protocol;
  struct sockaddr* ai_addr;
  char* ai_canonname;
  struct addrinfo* ai_next;
  ...;
};

uv_getaddrinfo_t* uvc_getaddrinfo(uvc_loop_t* loop, int64_t id, const char* node,
                                  const char* service, int family, int socktype,
                                  int protocol, int flags, int* err);
struct addrinfo* uvc_getaddrinfo_result(uv_getaddrinfo_t* req);
void uvc_getaddrinfo_free(uv_getaddrinfo_t* req);

uv_getnameinfo_t* uvc_getnameinfo(uvc_loop_t* loop, int64_t id, const struct sockaddr* addr,
                                  int flags, int* err);
const char* uvc_getnameinfo_host(uv_getnameinfo_t* req);
const char* uvc_getnameinfo_service(uv_getnameinfo_t* req);
void uvc_getnameinfo_free(uv_getnameinfo_t* req);
