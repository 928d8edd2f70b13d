"""Dynamic batching: requests that arrive together run through the model together.

A request puts its prepared input on a queue and awaits a future. One task takes the first
waiting input, gathers more until `max_batch_size` or `max_wait_ms` has passed, and runs the
batch in a single worker thread, so the event loop never blocks on the model and the model
never runs twice at once (its intra-op threads already use every core). While a batch runs,
the next one fills up: under load, batches grow by themselves; alone, a request waits at
most max_wait_ms (default 0: not at all).
"""
import asyncio
import time
from concurrent.futures import ThreadPoolExecutor


class Batcher:
    """Runs `run_batch(list of inputs) -> list of outputs (or exceptions)` on gathered inputs.

    >>> batcher = Batcher(lambda xs: [x * 2 for x in xs], max_batch_size=8)  # doctest: +SKIP
    >>> batcher.start()  # inside a running event loop (the service's lifespan)  # doctest: +SKIP
    >>> await batcher.submit(21)                                             # doctest: +SKIP
    42
    """

    def __init__(self, run_batch, max_batch_size=16, max_wait_ms=0.0, on_batch=None):
        self.run_batch, self.max_batch_size, self.max_wait = run_batch, max_batch_size, max_wait_ms / 1000
        self.on_batch = on_batch  # called with (batch size, seconds in the model), for metrics
        self.queue, self.task = None, None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="centaur-model")

    def start(self):
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self):
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        self.executor.shutdown(wait=True)

    async def submit(self, item):
        """Queue one input and wait for its output; an exception from the model is raised here."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((item, future))
        return await future

    async def _gather(self):
        batch = [await self.queue.get()]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch_size:
            try:
                batch.append(self.queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), left))
            except asyncio.TimeoutError:
                break
        # a request that timed out or went away while waiting needs no prediction
        return [(item, fut) for item, fut in batch if not fut.done()]

    async def _loop(self):
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            if not batch:
                continue
            t0 = time.perf_counter()
            try:
                outputs = await loop.run_in_executor(self.executor, self.run_batch, [item for item, _ in batch])
            except Exception as e:  # the whole batch failed: every request hears why
                outputs = [e] * len(batch)
            if self.on_batch is not None:
                self.on_batch(len(batch), time.perf_counter() - t0)
            for (_, fut), out in zip(batch, outputs):
                if fut.done():
                    continue
                if isinstance(out, BaseException):
                    fut.set_exception(out)
                else:
                    fut.set_result(out)
