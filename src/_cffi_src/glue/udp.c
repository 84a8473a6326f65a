/* ------------------------------------------------------------------------------------ */
/* UDP (docs: udp.rst)                                                                   */
/* ------------------------------------------------------------------------------------ */

/* Appended after uvcffi.c by build_ffi.py: uses its event queue, arena and close callback.
 *
 * Receiving.  Every datagram lands in the loop's read arena, followed by a copy of the
 * sender's address, so one event carries both:
 *
 *     (UDP_RECV, id, nread, offset | addrlen << 32)
 *
 * The data is `nread` bytes at `offset` (8-byte aligned); the sender's `struct sockaddr`
 * (`addrlen` bytes: a sockaddr_in or sockaddr_in6, else the whole sockaddr_storage) starts
 * at the next multiple of 8 after the data, i.e. at offset + ((nread + 7) & ~7); addrlen 0
 * would mean libuv named no sender.  nread 0 with an address is an empty datagram and is
 * delivered; libuv's "nothing more to read" (nread 0, no address) is not.  A receive error
 * is (UDP_RECV, id, error, -1).
 *
 * A datagram must never be truncated, so a slot is handed to libuv only when the arena
 * still has room for a whole datagram (libuv asks for 64 KiB) plus an address; otherwise
 * libuv gets an empty buffer, reports UV_ENOBUFS (dropped here) and leaves the datagram in
 * the kernel until the next iteration, which starts with an empty arena.  After each
 * datagram the unused part of its slot is given back, so small datagrams cost only their
 * size.
 *
 * Sending.  uvc_udp_try_send sends from the caller's buffer, without a copy, or answers
 * UV_EAGAIN (something is queued, or the kernel would block).  uvc_udp_send queues a copy
 * (the caller's bytes may die: on PyPy a bytes object passed as char* is only valid during
 * the call) and completes as (UDP_SEND, id, status, 0).  Sends carry the handle's own id:
 * libuv completes every queued send (UV_ECANCELED if need be) before the close callback.
 */

#define UVC__ALIGN8(n) (((n) + 7) & ~(size_t) 7)

static void uvc__udp_alloc_cb(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
  uvc_loop_t* l = UVC_LOOP(h);
  size_t start = UVC__ALIGN8(l->arena_used);
  if (start > UVC_ARENA_SIZE ||
      UVC_ARENA_SIZE - start < UVC__ALIGN8(suggested) + sizeof(struct sockaddr_storage)) {
    buf->base = NULL;
    buf->len = 0;
    return;
  }
  buf->base = l->arena + start;
  buf->len = suggested;
  l->arena_used = start + UVC__ALIGN8(suggested) + sizeof(struct sockaddr_storage);
}

static size_t uvc__sockaddr_len(const struct sockaddr* sa) {
  if (sa->sa_family == AF_INET) return sizeof(struct sockaddr_in);
  if (sa->sa_family == AF_INET6) return sizeof(struct sockaddr_in6);
  return sizeof(struct sockaddr_storage);
}

static void uvc__udp_recv_cb(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf,
                             const struct sockaddr* addr, unsigned flags) {
  uvc_loop_t* l = UVC_LOOP(h);
  size_t offset, addr_at, addrlen;
  (void) flags; /* UV_UDP_PARTIAL cannot happen: every slot holds a whole datagram */
  if (buf->base == NULL) return; /* UV_ENOBUFS: the arena is full, retried next iteration */
  offset = (size_t) (buf->base - l->arena);
  if (nread < 0 || (nread == 0 && addr == NULL)) {
    /* An error, or nothing more to read: give the slot back. */
    if (buf->base + UVC__ALIGN8(buf->len) + sizeof(struct sockaddr_storage) ==
        l->arena + l->arena_used)
      l->arena_used = offset;
    if (nread < 0) uvc__push(l, UVC_EV_UDP_RECV, UVC_ID(h), (int64_t) nread, -1);
    return;
  }
  /* libuv always names the sender of a datagram; addrlen 0 would mean it did not. */
  addr_at = offset + UVC__ALIGN8((size_t) nread);
  addrlen = addr != NULL ? uvc__sockaddr_len(addr) : 0;
  if (addrlen) memcpy(l->arena + addr_at, addr, addrlen);
  if (buf->base + UVC__ALIGN8(buf->len) + sizeof(struct sockaddr_storage) ==
      l->arena + l->arena_used)
    l->arena_used = addr_at + addrlen;
  uvc__push(l, UVC_EV_UDP_RECV, UVC_ID(h), (int64_t) nread,
            (int64_t) offset | ((int64_t) addrlen << 32));
}

/* `family` is AF_UNSPEC (the socket is created by bind, connect, the first send, or
 * adopted with uvc_udp_open), AF_INET or AF_INET6 (created now). */
static uv_udp_t* uvc_udp_new(uvc_loop_t* l, int64_t id, int family, int* err) {
  uv_udp_t* h = uvc__handle_alloc(l, UV_UDP, id);
  if (h == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  *err = uv_udp_init_ex(&l->uv, h, (unsigned int) family);
  if (*err) {
    uvc__handle_abort(l, h);
    return NULL;
  }
  return h;
}

/* Adopts a socket.  uv_udp_open also turns on SO_REUSEADDR (SO_REUSEPORT on the BSDs and
 * macOS), which would let another process bind the same port and steal its datagrams --
 * the reason asyncio dropped reuse_address -- so the options are put back as they were. */
static int uvc_udp_open(uv_udp_t* h, int fd) {
  int r;
#ifndef _WIN32
  int reuseaddr = 0;
  socklen_t len = sizeof(reuseaddr);
  int have_reuseaddr = getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuseaddr, &len) == 0;
#ifdef SO_REUSEPORT
  int reuseport = 0;
  socklen_t len2 = sizeof(reuseport);
  int have_reuseport = getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &reuseport, &len2) == 0;
#endif
#endif
  r = uv_udp_open(h, (uv_os_sock_t) fd);
  if (r) return r;
#ifndef _WIN32
  if (have_reuseaddr && !reuseaddr)
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuseaddr, sizeof(reuseaddr));
#ifdef SO_REUSEPORT
  if (have_reuseport && !reuseport)
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &reuseport, sizeof(reuseport));
#endif
#endif
  return 0;
}

static int uvc_udp_bind(uv_udp_t* h, const struct sockaddr* addr, unsigned int flags) {
  return uv_udp_bind(h, addr, flags);
}

/* `addr` NULL disconnects. */
static int uvc_udp_connect(uv_udp_t* h, const struct sockaddr* addr) {
  return uv_udp_connect(h, addr);
}

static int uvc_udp_recv_start(uv_udp_t* h) {
  return uv_udp_recv_start(h, uvc__udp_alloc_cb, uvc__udp_recv_cb);
}

static int uvc_udp_recv_stop(uv_udp_t* h) { return uv_udp_recv_stop(h); }

/* Returns the bytes sent (0 for an empty datagram), UV_EAGAIN, or another error.  `addr`
 * must be NULL on a connected handle and set on an unconnected one. */
static int uvc_udp_try_send(uv_udp_t* h, const char* data, size_t len,
                            const struct sockaddr* addr) {
  uv_buf_t buf;
  buf.base = (char*) data;
  buf.len = len;
  return uv_udp_try_send(h, &buf, 1, addr);
}

typedef struct {
  uv_udp_send_t req;
  char data[1];
} uvc__udp_send_t;

static void uvc__udp_send_cb(uv_udp_send_t* req, int status) {
  uvc_loop_t* l = (uvc_loop_t*) req->handle->loop;
  l->requests_finished++;
  uvc__push(l, UVC_EV_UDP_SEND, (int64_t) (intptr_t) req->data, status, 0);
  free(req);
}

static int uvc_udp_send(uv_udp_t* h, int64_t id, const char* data, size_t len,
                        const struct sockaddr* addr) {
  uv_buf_t buf;
  int r;
  uvc__udp_send_t* s = malloc(sizeof(uvc__udp_send_t) + len);
  if (s == NULL) return UV_ENOMEM;
  if (len) memcpy(s->data, data, len);
  s->req.data = (void*) (intptr_t) id;
  buf.base = s->data;
  buf.len = len;
  r = uv_udp_send(&s->req, h, &buf, 1, addr, uvc__udp_send_cb);
  if (r) {
    free(s);
    return r;
  }
  UVC_LOOP(h)->requests_started++;
  return 0;
}

static int uvc_udp_getsockname(uv_udp_t* h, struct sockaddr_storage* out) {
  int len = (int) sizeof(*out);
  return uv_udp_getsockname(h, (struct sockaddr*) out, &len);
}

static int uvc_udp_getpeername(uv_udp_t* h, struct sockaddr_storage* out) {
  int len = (int) sizeof(*out);
  return uv_udp_getpeername(h, (struct sockaddr*) out, &len);
}

static int uvc_udp_set_broadcast(uv_udp_t* h, int on) { return uv_udp_set_broadcast(h, on); }
static int uvc_udp_set_ttl(uv_udp_t* h, int ttl) { return uv_udp_set_ttl(h, ttl); }
static size_t uvc_udp_send_queue_size(uv_udp_t* h) { return uv_udp_get_send_queue_size(h); }
static size_t uvc_udp_send_queue_count(uv_udp_t* h) { return uv_udp_get_send_queue_count(h); }
