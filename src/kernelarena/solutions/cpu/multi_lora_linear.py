"""Multi-LoRA linear: the ``multi_lora_linear`` search template (on the shared GEMM core ``karena/gemm.h``)
rendered with the best config ``karena tune`` stored for this machine, or the template's default.

The template is the only source of this kernel; see ``kernelarena.search.templates.multi_lora_linear``.
"""

from kernelarena.backends.rendered import load_rendered

ModelNew = load_rendered("multi_lora_linear").ModelNew
