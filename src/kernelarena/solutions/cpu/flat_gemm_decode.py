"""Flat GEMM for decode: the ``flat_gemm_decode`` search template (flat tiles on ``karena/gemm.h``'s
vector type, W streamed once) rendered with the best config ``karena tune`` stored for this
machine, or the template's default.

The template is the only source of this kernel; see ``kernelarena.search.templates.flat_gemm_decode``.
"""

from kernelarena.backends.rendered import load_rendered

ModelNew = load_rendered("flat_gemm_decode").ModelNew
