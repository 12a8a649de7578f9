"""W4A16 GEMV: the ``w4a16_gemv`` search template (int4 weights dequantized in registers on
``karena/vmath.h``) rendered with the best config ``karena tune`` stored for this machine, or the
template's default.

The template is the only source of this kernel; see ``kernelarena.search.templates.w4a16_gemv``.
"""

from kernelarena.backends.rendered import load_rendered

ModelNew = load_rendered("w4a16_gemv").ModelNew
