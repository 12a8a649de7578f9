"""Ternary (BitNet b1.58) matmul: the ``ternary_matmul`` search template (masked adds and subtracts,
``karena/gemm.h``'s vector type without AVX-512) rendered with the best config ``karena tune``
stored for this machine, or the template's default.

The template is the only source of this kernel; see ``kernelarena.search.templates.ternary_matmul``.
"""

from kernelarena.backends.rendered import load_rendered

ModelNew = load_rendered("ternary_matmul").ModelNew
