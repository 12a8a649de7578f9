"""Kernel backends, imported lazily: ``c`` (gcc + ctypes), ``numba``, ``triton``, ``cuda``."""
