"""Layer 2: asyncio's event loop on top of the libuv layer (``uvcffi._uv``).

* ``handles``: asyncio's Handle and TimerHandle, made cheap.
* ``core``: the scheduling core -- ready queue, timers, ``run_forever`` and one iteration,
  thread wake-ups, exception handling, debug mode, async generator hooks.
* ``executor``, ``dns``, ``signals``: the loop's other services, one module each.
* ``loop``: :class:`~uvcffi._loop.loop.Loop`, the whole ``AbstractEventLoop``.
"""
