/* Base request (docs: request.rst).  Requests have no close step; the glue frees each
 * one after Python has read its result. */
int uvc_cancel(void* req);
