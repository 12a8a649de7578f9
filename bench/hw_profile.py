"""Measure this machine and print its full hardware profile (human summary, then JSON).

Usage::

    .venv/bin/python bench/hw_profile.py            # full CPU measurement (~15-30 s)
    .venv/bin/python bench/hw_profile.py --quick    # a few seconds
    .venv/bin/python bench/hw_profile.py --cuda     # GPU 0, when CUDA is available
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

from kernelarena.hw import describe, measure_cpu, measure_cuda


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short measurement (tests use this)")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: KARENA_THREADS or all)")
    parser.add_argument("--cuda", action="store_true", help="measure CUDA device 0 instead of the CPU")
    parser.add_argument("--verbose", action="store_true", help="log each bandwidth point")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    if args.verbose:
        logging.getLogger("kernelarena.backends").setLevel(logging.INFO)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    t0 = time.perf_counter()
    profile = measure_cuda(quick=args.quick) if args.cuda else measure_cpu(args.threads, quick=args.quick)
    elapsed = time.perf_counter() - t0
    print(describe(profile))
    print(f"measurement took {elapsed:.1f} s (load average before: {load:.2f})")
    print("profile JSON fields:")
    for key, value in sorted(json.loads(profile.to_json()).items()):
        print(f"  {key}: {json.dumps(value)}")


if __name__ == "__main__":
    main()
