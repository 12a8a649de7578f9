"""Fused residual add + RMSNorm: the ``add_rmsnorm`` search template (per row, the sum of squares
of ``h = x + residual``, then one pass that writes ``h`` and ``rmsnorm(h) * weight``, by default
recomputing ``h`` from the rows still in cache so both outputs can be written with streaming stores
when they exceed the caches; rows split over OpenMP threads, ``karena/rownorm.h``) rendered with
the best config ``karena tune`` stored for this machine, or the template's default.

The template is the only source of this kernel; see ``kernelarena.search.templates.add_rmsnorm``.
"""

from kernelarena.backends.rendered import load_rendered

ModelNew = load_rendered("add_rmsnorm").ModelNew
