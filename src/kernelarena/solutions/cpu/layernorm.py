"""LayerNorm: the ``layernorm`` search template (per row, the mean and the variance over
independent accumulator chains, two-pass by default so a large common offset does not cancel, then
one affine pass that writes with streaming stores when the output exceeds the caches; rows split
over OpenMP threads, ``karena/rownorm.h``) rendered with the best config ``karena tune`` stored for
this machine, or the template's default.

The template is the only source of this kernel; see ``kernelarena.search.templates.layernorm``.
"""

from kernelarena.backends.rendered import load_rendered

ModelNew = load_rendered("layernorm").ModelNew
