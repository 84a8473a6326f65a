"""Workloads that need only the core loop: callbacks, timers, futures, tasks, threads."""

import asyncio
import random
import threading

from . import Workload, WrongResult, check, register

# libuv keeps time in whole milliseconds and rounds a delay to the nearest millisecond, so a
# libuv-based loop (uvloop, uvcffi) may run a timer up to 0.5 ms before the float deadline
# computed from loop.time() + delay, and may run two timers due within the same millisecond in
# the order they were started whatever their float deadlines say.  The stdlib loop has a
# similar, smaller, allowance (its clock_resolution).  Both checks allow this much.
TIMER_SLACK = 0.001


@register
class CallSoon(Workload):
    name = "call_soon"
    doc = "a chain of N callbacks, each scheduling the next with loop.call_soon"
    unit = "callback"
    quick = 100_000
    full = 500_000

    def run(self, loop, n):
        fut = loop.create_future()
        call_soon = loop.call_soon
        count = 0

        def cb(i):
            nonlocal count
            count += 1
            if i != count:
                fut.set_exception(WrongResult(f"callback {i} ran as number {count}"))
            elif count < n:
                call_soon(cb, count + 1)
            else:
                fut.set_result(count)

        call_soon(cb, 1)
        done = loop.run_until_complete(fut)
        check(done == n == count, f"{count} of {n} chained callbacks ran")
        return n


@register
class CallSoonBatch(Workload):
    name = "call_soon_batch"
    doc = "N callbacks scheduled with call_soon up front, then run; FIFO order checked"
    unit = "callback"
    quick = 100_000
    full = 500_000

    def run(self, loop, n):
        call_soon = loop.call_soon
        expected = 0
        wrong = []

        def cb(i):
            nonlocal expected
            if i != expected and not wrong:
                wrong.append((i, expected))
            expected = i + 1

        for i in range(n):
            call_soon(cb, i)
        call_soon(loop.stop)
        loop.run_forever()
        if wrong:
            raise WrongResult("callbacks out of order: {} ran when {} was due".format(*wrong[0]))
        check(expected == n, f"the last callback to run was {expected - 1}, not {n - 1}")
        return n


@register
class CallLater(Workload):
    name = "call_later"
    doc = ("N timers with random 0-10 ms delays, scheduled 100 per callback while the loop "
           "runs; all must fire, none early, in deadline order")
    unit = "timer"
    quick = 20_000
    full = 100_000
    chunk = 100

    def setup(self, loop, n):
        rnd = random.Random(1234)
        self.n = n
        self.delays = [rnd.uniform(0.0, 0.010) for _ in range(n)]
        self.scheduled = [0.0] * n   # loop.time() just before call_later
        self.fired_at = [None] * n   # loop.time() when the callback ran
        self.order = []              # indices in the order the callbacks ran
        self.handles = [None] * n

    def run(self, loop, n):
        fut = loop.create_future()
        delays, scheduled, fired_at, order, handles = (
            self.delays, self.scheduled, self.fired_at, self.order, self.handles)
        time, call_later, call_soon = loop.time, loop.call_later, loop.call_soon
        chunk = self.chunk
        left = n

        def fire(i):
            nonlocal left
            fired_at[i] = time()
            order.append(i)
            left -= 1
            if not left:
                fut.set_result(None)

        def produce(start):
            stop = min(start + chunk, n)
            for i in range(start, stop):
                scheduled[i] = time()
                handles[i] = call_later(delays[i], fire, i)
            if stop < n:
                call_soon(produce, stop)

        call_soon(produce, 0)
        loop.run_until_complete(fut)
        return n

    def verify(self, loop):
        n, delays, scheduled, fired_at, order = (
            self.n, self.delays, self.scheduled, self.fired_at, self.order)
        check(len(order) == n and len(set(order)) == n,
              f"{len(set(order))} distinct timers fired of {n} ({len(order)} firings)")
        deadline = [scheduled[i] + delays[i] for i in range(n)]
        early = [i for i in range(n) if fired_at[i] < deadline[i] - TIMER_SLACK]
        if early:
            worst = max(deadline[i] - fired_at[i] for i in early)
            raise WrongResult(f"{len(early)} timers fired early, up to {1e3 * worst:.2f} ms "
                              "before loop.time() + delay")
        # Order: among real timers (delay >= 1 ms; shorter ones may be run as call_soon
        # callbacks, as uvloop does), the loop's own deadlines, TimerHandle.when(), must not go
        # down in firing order by more than the slack: a timer whose deadline had passed when a
        # later one ran would have been due first.  (A timer started after another fired has a
        # later deadline, so no pair is excused by when it was scheduled.)
        latest = float("-inf")
        late, worst = 0, 0.0
        for i in order:
            if delays[i] < 0.001:
                continue
            when = getattr(self.handles[i], "when", None)
            check(when is not None, "call_later() returned a handle without when()")
            when = when()
            if when < latest - TIMER_SLACK:
                late += 1
                worst = max(worst, latest - when)
            latest = max(latest, when)
        if late:
            raise WrongResult(f"{late} timers ran after a timer due later than them, by up to "
                              f"{1e3 * worst:.2f} ms (TimerHandle.when())")


@register
class TimerCancel(Workload):
    name = "timer_cancel"
    doc = ("N timers (0-10 ms) started then cancelled, then one 1 ms timer that must fire; "
           "none of the cancelled may fire later")
    unit = "timer"
    quick = 50_000
    full = 250_000

    def setup(self, loop, n):
        rnd = random.Random(4321)
        self.delays = [rnd.uniform(0.0, 0.010) for _ in range(n)]
        self.fired = []

    def run(self, loop, n):
        fired = self.fired
        call_later = loop.call_later
        handles = [call_later(d, fired.append, d) for d in self.delays]
        for h in handles:
            h.cancel()
        fut = loop.create_future()
        call_later(0.001, fut.set_result, 7)
        check(loop.run_until_complete(fut) == 7, "the last timer gave a wrong result")
        self.handles = handles
        return n

    def verify(self, loop):
        # Let every cancelled timer's deadline pass, with margin, before looking.
        loop.run_until_complete(asyncio.sleep(0.015))
        check(not self.fired, f"{len(self.fired)} cancelled timers fired")
        check(all(h.cancelled() for h in self.handles), "a handle does not say it is cancelled")


async def _double(i):
    return 2 * i


@register
class TasksGather(Workload):
    name = "tasks_gather"
    doc = "N tasks of a trivial coroutine made with loop.create_task, then asyncio.gather"
    unit = "task"
    quick = 50_000
    full = 200_000

    def run(self, loop, n):
        async def main():
            create_task = loop.create_task
            tasks = [create_task(_double(i)) for i in range(n)]
            return await asyncio.gather(*tasks)

        results = loop.run_until_complete(main())
        check(len(results) == n, f"gather gave {len(results)} results for {n} tasks")
        wrong = [i for i, r in enumerate(results) if r != 2 * i]
        check(not wrong, f"{len(wrong)} wrong results, e.g. task {wrong[0] if wrong else 0}")
        return n


@register
class Sleep0PingPong(Workload):
    name = "sleep0_pingpong"
    doc = "K=100 tasks each doing N/K `await asyncio.sleep(0)`, interleaved"
    unit = "sleep(0)"
    quick = 100_000
    full = 500_000
    tasks = 100

    def run(self, loop, n):
        k = self.tasks
        m = max(1, n // k)
        sleep = asyncio.sleep
        progress = [0] * k
        lag = []

        async def player(j):
            for step in range(m):
                progress[j] = step + 1
                await sleep(0)
                # Every other task got a turn in between: nobody is two steps behind us.
                if progress[j - 1] < step and not lag:
                    lag.append((j, step))
            return progress[j]

        async def main():
            return await asyncio.gather(*[loop.create_task(player(j)) for j in range(k)])

        counts = loop.run_until_complete(main())
        check(counts == [m] * k, f"tasks made {sum(counts)} of {m * k} steps")
        if lag:
            raise WrongResult("sleep(0) did not let the other tasks run: task {} at step {}"
                              .format(*lag[0]))
        return m * k


@register
class FutureRoundtrip(Workload):
    name = "future_roundtrip"
    doc = "N times: loop.create_future(), a call_soon sets its result, the task awaits it"
    unit = "round trip"
    quick = 100_000
    full = 500_000

    def run(self, loop, n):
        async def main():
            create_future, call_soon = loop.create_future, loop.call_soon
            total = 0
            for i in range(n):
                fut = create_future()
                call_soon(fut.set_result, i)
                total += await fut
            return total

        total = loop.run_until_complete(main())
        check(total == n * (n - 1) // 2, f"sum of results {total} != {n * (n - 1) // 2}")
        return n


@register
class Threadsafe(Workload):
    name = "threadsafe"
    doc = "T=4 threads share N loop.call_soon_threadsafe calls; all must run, in order per thread"
    unit = "callback"
    quick = 50_000
    full = 200_000
    threads = 4

    def run(self, loop, n):
        t = self.threads
        per = [n // t + (1 if j < n % t else 0) for j in range(t)]
        seen = [0] * t
        wrong = []
        fut = loop.create_future()
        left = n

        def cb(j, k):
            nonlocal left
            if k != seen[j] + 1 and not wrong:
                wrong.append((j, k, seen[j]))
            seen[j] = k
            left -= 1
            if not left:
                fut.set_result(None)

        start = threading.Barrier(t)

        def producer(j):
            call = loop.call_soon_threadsafe
            start.wait()
            for k in range(1, per[j] + 1):
                call(cb, j, k)

        async def main():
            threads = [threading.Thread(target=producer, args=(j,)) for j in range(t)]
            for th in threads:
                th.start()
            await fut
            for th in threads:
                th.join()

        loop.run_until_complete(main())
        if wrong:
            raise WrongResult("thread {}: call {} ran after call {}".format(*wrong[0]))
        check(seen == per, f"{sum(seen)} of {n} threadsafe callbacks ran")
        return n


def _inc(i):
    return i + 1


@register
class RunInExecutor(Workload):
    name = "run_in_executor"
    doc = "N sequential round trips to the default executor (loop.run_in_executor(None, f))"
    unit = "round trip"
    quick = 10_000
    full = 50_000

    def run(self, loop, n):
        async def main():
            run_in_executor = loop.run_in_executor
            total = 0
            for i in range(n):
                total += await run_in_executor(None, _inc, i)
            return total

        total = loop.run_until_complete(main())
        check(total == n * (n + 1) // 2, f"sum of results {total} != {n * (n + 1) // 2}")
        return n


async def _answer():
    await asyncio.sleep(0)
    return 42


@register
class LoopCreateClose(Workload):
    name = "loop_create_close"
    doc = "N times: a new loop from the loop's factory, run_until_complete(trivial coro), close"
    unit = "loop"
    quick = 2_000
    full = 10_000

    def run(self, loop, n):
        factory = self.loop_factory
        for _ in range(n):
            new = factory()
            try:
                result = new.run_until_complete(_answer())
            finally:
                new.close()
            if result != 42 or not new.is_closed():
                raise WrongResult(f"run_until_complete gave {result!r}, closed: "
                                  f"{new.is_closed()}")
        return n
