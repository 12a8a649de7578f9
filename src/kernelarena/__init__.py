"""kernelarena: verify, time honestly and search for fast compute kernels."""

__version__ = "0.1.0"
