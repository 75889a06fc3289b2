"""The server's work queue: a bounded number of images in flight, one thread running the
models, and requests of the same shape gathered into one batch.

TensorFlow already spreads one call over every core, so one worker thread is as fast as
several and keeps memory bounded: what is queued is ``max_images`` decoded images at
most, each under the server's pixel limit.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future

import numpy as np


class Busy(Exception):
    """The queue is full; ``retry_after`` is when a slot is likely free, in seconds."""

    def __init__(self, retry_after: int, limit: int):
        super().__init__(f"the server is busy ({limit} images in flight, its limit); "
                         f"retry in {retry_after} s")
        self.retry_after = retry_after


@dataclasses.dataclass(eq=False)
class Job:
    """One image to run: ``run`` maps a list of images to a list of results; jobs of
    the same ``key`` (not None) may run as one batch, through the first one's ``run``."""

    image: np.ndarray
    run: Callable[[list[np.ndarray]], list[np.ndarray]]
    key: Hashable | None
    future: Future = dataclasses.field(default_factory=Future)


class WorkQueue:
    """Runs jobs on one thread, batching jobs of the same key.

    Args:
        max_images: images queued or running at most; :meth:`submit` past it raises
            :class:`Busy`.
        max_batch: most images run in one call (1: no batching).

    Example:
        >>> queue = WorkQueue(max_images=8, max_batch=4)
        >>> [future] = queue.submit([Job(image, stylizer.stylize_batch, key=image.shape)])
        >>> result = future.result()
    """

    def __init__(self, max_images: int = 16, max_batch: int = 4):
        if max_images < 1 or max_batch < 1:
            raise ValueError("max_images and max_batch must be at least 1")
        self.max_images, self.max_batch = int(max_images), int(max_batch)
        self._jobs: collections.deque[Job] = collections.deque()
        self._in_flight = 0
        self._seconds_per_image = 1.0  # a running mean, for Retry-After
        self._closing = False
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="kstyle-worker", daemon=True)
        self._thread.start()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def submit(self, jobs: list[Job]) -> list[Future]:
        """Queues ``jobs`` all together, or none of them.

        Raises:
            Busy: they would take the queue past ``max_images``.
            RuntimeError: the queue is closed.
        """
        with self._ready:
            if self._closing:
                raise RuntimeError("the server is shutting down")
            if self._in_flight + len(jobs) > self.max_images:
                raise Busy(self.retry_after(), self.max_images)
            self._in_flight += len(jobs)
            self._jobs.extend(jobs)
            self._ready.notify()
        return [job.future for job in jobs]

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained, at least 1."""
        batches = self._in_flight / self.max_batch if self.max_batch > 1 else self._in_flight
        return max(1, math.ceil(batches * self._seconds_per_image))

    def close(self, timeout: float | None = None) -> None:
        """Takes no more jobs, runs those queued, and stops the thread."""
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join(timeout)

    def _next_batch(self) -> list[Job] | None:
        with self._ready:
            while not self._jobs and not self._closing:
                self._ready.wait()
            if not self._jobs:
                return None
            first = self._jobs.popleft()
            batch = [first]
            if first.key is not None:
                for job in list(self._jobs):
                    if len(batch) >= self.max_batch:
                        break
                    if job.key == first.key:
                        batch.append(job)
                        self._jobs.remove(job)
            return batch

    def _loop(self) -> None:
        while (batch := self._next_batch()) is not None:
            live = [job for job in batch if job.future.set_running_or_notify_cancel()]
            if live:
                start = time.perf_counter()
                try:
                    results = live[0].run([job.image for job in live])
                except BaseException as error:  # given to each request, which reports it
                    for job in live:
                        job.future.set_exception(error)
                else:
                    for job, result in zip(live, results):
                        job.future.set_result(result)
                seconds = (time.perf_counter() - start) / len(live)
                self._seconds_per_image = 0.8 * self._seconds_per_image + 0.2 * seconds
            with self._ready:
                self._in_flight -= len(batch)
