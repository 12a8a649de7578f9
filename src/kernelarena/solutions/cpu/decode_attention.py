"""Decode attention: the ``decode_attention`` search template (split-K FlashDecoding on the shared
``karena/decode.h``) rendered with the best config ``karena tune`` stored for this machine, or the
template's default.

The template is the only source of this kernel; see ``kernelarena.search.templates.decode_attention``.
"""

from kernelarena.backends.rendered import load_rendered

ModelNew = load_rendered("decode_attention").ModelNew
