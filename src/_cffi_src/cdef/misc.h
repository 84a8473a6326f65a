/* Miscellaneous utilities (docs: misc.rst, version.rst) and the glue's version stamp. */
unsigned int uv_version(void);
const char* uv_version_string(void);
uint64_t uv_hrtime(void);

int uvc_glue_version(void);
unsigned int uvc_built_uv_version(void);

/* Socket addresses: numeric (host, port, flowinfo, scope_id) <-> struct sockaddr. */
struct sockaddr { unsigned short sa_family; ...; };
struct sockaddr_storage { ...; };
#define AF_INET ...
#define AF_INET6 ...
#define AF_UNSPEC ...
int uvc_sockaddr_info(const struct sockaddr* sa, char* host, size_t hostlen, int* port,
                      uint32_t* flowinfo, uint32_t* scope_id);
int uvc_sockaddr_from(int family, const char* host, int port, uint32_t flowinfo,
                      uint32_t scope_id, struct sockaddr_storage* storage);
