"""Per-call GPU timing with CUDA events, an L2 flush sized to the real cache, optional CUDA graphs.

What one number means: the time between two CUDA events recorded on the *current* stream right
before and right after ``fn(i)``. With ``cache="cold"`` a buffer of twice the device's L2 size is
overwritten before every call (outside the events), so each call starts with no input or output
bytes in L2; ``cache="warm"`` skips the flush. Events of a batch are read after one
``torch.cuda.synchronize()``, so the timer never stalls the queue inside a batch.

Launch overhead: a call's events bracket the GPU work of the call. When the GPU runs ahead of the
Python that launches it (tiny kernels), the gap while the GPU waits for the next launch falls
between the events and is counted; that is the latency a user would see. ``use_graph=True``
captures all calls (and flushes) into one CUDA graph with timing events inside it
(``cudaEventRecordExternal``), which removes host launch overhead and measures the kernels alone.

Importing this module is safe without CUDA (and without torch): torch is imported on first use.

Example::

    timer = CudaTimer()
    ms = timer.time_calls(lambda i: model(*inputs[i % len(inputs)]), 100, cache="cold")
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

CACHE_MODES = ("cold", "warm")


class CudaTimer:
    """Times calls on one CUDA device; see the module docstring for what is measured.

    ``warmup_calls`` untimed calls run first (Triton compiles and autotunes on the first call);
    ``batch_calls`` bounds how many calls are queued before the host synchronizes.
    """

    def __init__(
        self,
        device: Any = None,
        *,
        warmup_calls: int = 3,
        batch_calls: int = 64,
        flush_factor: float = 2.0,
    ) -> None:
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("CudaTimer needs a CUDA device; use the CPU timer on this machine")
        self.torch = torch
        self.device = (
            torch.device("cuda", torch.cuda.current_device()) if device is None else torch.device(device)
        )
        props = torch.cuda.get_device_properties(self.device)
        self.device_name: str = props.name
        self.l2_bytes: int = int(getattr(props, "L2_cache_size", 0) or 0) or 50 * (1 << 20)
        self.flush_bytes: int = int(flush_factor * self.l2_bytes)
        self.warmup_calls = warmup_calls
        self.batch_calls = max(1, batch_calls)
        self._flush_buf: Any = None

    def _flush(self) -> None:
        """Overwrite 2x L2 with a memset kernel: evicts every line the previous call left in L2."""
        if self._flush_buf is None:
            self._flush_buf = self.torch.empty(self.flush_bytes, dtype=self.torch.int8, device=self.device)
        self._flush_buf.zero_()

    def describe(self) -> dict[str, Any]:
        """The settings a measurement record should carry."""
        return {
            "device": self.device_name,
            "l2_bytes": self.l2_bytes,
            "flush_bytes": self.flush_bytes,
            "warmup_calls": self.warmup_calls,
            "timer": "cuda-events",
        }

    def time_calls(
        self,
        fn: Callable[[int], object],
        n_calls: int,
        *,
        cache: str = "cold",
        use_graph: bool = False,
    ) -> list[float]:
        """Per-call milliseconds of ``fn(0) .. fn(n_calls - 1)`` (``fn(i)`` uses input set ``i % n_sets``)."""
        if cache not in CACHE_MODES:
            raise ValueError(f"cache must be one of {CACHE_MODES}, not {cache!r}")
        if n_calls < 1:
            raise ValueError("n_calls must be >= 1")
        torch = self.torch
        with torch.cuda.device(self.device):
            for i in range(self.warmup_calls):
                if cache == "cold":
                    self._flush()
                fn(i)
            torch.cuda.synchronize()
            if use_graph:
                return self._time_graph(fn, n_calls, cache == "cold")
            return self._time_eager(fn, n_calls, cache == "cold")

    def _time_eager(self, fn: Callable[[int], object], n_calls: int, cold: bool) -> list[float]:
        torch = self.torch
        times: list[float] = []
        for first in range(0, n_calls, self.batch_calls):
            calls = range(first, min(n_calls, first + self.batch_calls))
            events = [
                (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in calls
            ]
            torch.cuda.synchronize()
            for i, (start, end) in zip(calls, events):
                if cold:
                    self._flush()
                stream = torch.cuda.current_stream()  # fn may switch streams between calls
                start.record(stream)
                fn(i)
                end.record(torch.cuda.current_stream())
            torch.cuda.synchronize()
            times += [start.elapsed_time(end) for start, end in events]
        return times

    def _time_graph(self, fn: Callable[[int], object], n_calls: int, cold: bool) -> list[float]:
        """Capture every call (with its flush) into one graph with timing events inside, replay once.

        Each call needs its own events in the graph; ``external=True`` makes them event-record
        nodes (timed on replay) instead of capture-internal dependencies.
        """
        torch = self.torch
        times: list[float] = []
        for first in range(0, n_calls, self.batch_calls):
            calls = range(first, min(n_calls, first + self.batch_calls))
            events = [
                (
                    torch.cuda.Event(enable_timing=True, external=True),
                    torch.cuda.Event(enable_timing=True, external=True),
                )
                for _ in calls
            ]
            if cold and self._flush_buf is None:
                self._flush()  # allocate outside the capture
            graph = torch.cuda.CUDAGraph()
            capture_stream = torch.cuda.Stream(self.device)
            capture_stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(capture_stream), torch.cuda.graph(graph, stream=capture_stream):
                for i, (start, end) in zip(calls, events):
                    if cold:
                        self._flush()
                    start.record()
                    fn(i)
                    end.record()
            torch.cuda.current_stream().wait_stream(capture_stream)
            graph.replay()  # first replay uploads the graph; not timed
            torch.cuda.synchronize()
            graph.replay()
            torch.cuda.synchronize()
            times += [start.elapsed_time(end) for start, end in events]
            del graph
        return times
