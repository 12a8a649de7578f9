"""RMSNorm: the ``rmsnorm`` search template (per row, a sum-of-squares reduction over independent
accumulator chains, then one scale pass that writes with streaming stores when the output exceeds
the caches; rows split over OpenMP threads, ``karena/rownorm.h``) rendered with the best config
``karena tune`` stored for this machine, or the template's default.

The template is the only source of this kernel; see ``kernelarena.search.templates.rmsnorm``.
"""

from kernelarena.backends.rendered import load_rendered

ModelNew = load_rendered("rmsnorm").ModelNew
