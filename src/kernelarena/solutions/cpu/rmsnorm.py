"""RMSNorm: the ``rmsnorm`` search template (one fused reduce + scale pass per row, streaming stores
for large outputs) rendered with the best config ``karena tune`` stored for this machine, or the
template's default.

The template is the only source of this kernel; see ``kernelarena.search.templates.rmsnorm``.
"""

from kernelarena.backends.rendered import load_rendered

ModelNew = load_rendered("rmsnorm").ModelNew
