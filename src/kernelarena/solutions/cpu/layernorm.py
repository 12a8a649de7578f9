"""LayerNorm: the ``layernorm`` search template (two-pass row statistics, then the affine pass with
streaming stores for large outputs) rendered with the best config ``karena tune`` stored for this
machine, or the template's default.

The template is the only source of this kernel; see ``kernelarena.search.templates.layernorm``.
"""

from kernelarena.backends.rendered import load_rendered

ModelNew = load_rendered("layernorm").ModelNew
