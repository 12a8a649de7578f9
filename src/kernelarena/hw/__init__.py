"""Machine profile and roofline: what this machine can do, and whether a timing is plausible.

Importing this package is cheap (stdlib only): numpy, torch and the C kernels load only when a
measurement runs. Typical use::

    from kernelarena.hw import load_or_measure, percent_of_roofline
    profile = load_or_measure(settings.db_path())
    pct = percent_of_roofline(profile, flops, bytes_moved, median_ms, working_set_bytes=bytes_moved)
"""

from __future__ import annotations

from kernelarena.hw.cpu import measure_cpu
from kernelarena.hw.cuda import measure_cuda
from kernelarena.hw.profile import (
    HardwareProfile,
    cpu_machine_id,
    describe,
    flush_buffer_bytes,
    llc_bytes,
    read_cache_sizes,
)
from kernelarena.hw.roofline import attainable_bw, peak_flops, percent_of_roofline, roofline_ms
from kernelarena.hw.store import load_or_measure

__all__ = [
    "HardwareProfile",
    "attainable_bw",
    "cpu_machine_id",
    "describe",
    "flush_buffer_bytes",
    "llc_bytes",
    "load_or_measure",
    "measure_cpu",
    "measure_cuda",
    "peak_flops",
    "percent_of_roofline",
    "read_cache_sizes",
    "roofline_ms",
]
