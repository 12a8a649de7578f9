"""Fused linear cross-entropy: the ``fused_linear_cross_entropy`` search template (on the shared GEMM core ``karena/gemm.h``)
rendered with the best config ``karena tune`` stored for this machine, or the template's default.

The template is the only source of this kernel; see ``kernelarena.search.templates.fused_linear_cross_entropy``.
"""

from kernelarena.backends.rendered import load_rendered

ModelNew = load_rendered("fused_linear_cross_entropy").ModelNew
