"""fp32 GEMM: the ``gemm_fp32`` search template (packed Goto/BLIS GEMM on ``karena/gemm.h``)
rendered with the best config ``karena tune`` stored for this machine, or the template's default.

The template is the only source of this kernel; see ``kernelarena.search.templates.gemm_fp32``.
"""

from kernelarena.backends.rendered import load_rendered

ModelNew = load_rendered("gemm_fp32").ModelNew
