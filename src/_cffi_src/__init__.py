"""Build-time sources of uvcffi's cffi extension; not installed, only read by build_ffi.py."""
