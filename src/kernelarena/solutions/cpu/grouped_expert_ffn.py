"""Grouped expert FFN: the ``grouped_expert_ffn`` search template (on the shared GEMM core ``karena/gemm.h``)
rendered with the best config ``karena tune`` stored for this machine, or the template's default.

The template is the only source of this kernel; see ``kernelarena.search.templates.grouped_expert_ffn``.
"""

from kernelarena.backends.rendered import load_rendered

ModelNew = load_rendered("grouped_expert_ffn").ModelNew
