"""Loop factories for `run.py --loop NAME=benchmarks.loops:FACTORY` that need arguments."""


def uvcffi_stdlib_futures():
    """uvcffi with the stdlib's C Future and Task (create_future/create_task use them)."""
    import uvcffi

    return uvcffi.new_event_loop(stdlib_futures=True)
