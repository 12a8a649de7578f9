"""The shared C library: sources include ``karena/*.h`` and a header change changes the build key."""

from __future__ import annotations

import pytest

from kernelarena.backends import c

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(120)]


def test_header_is_found_and_its_text_is_in_the_build_key(tmp_path, monkeypatch):
    inc = tmp_path / "inc"
    (inc / "karena").mkdir(parents=True)
    hdr = inc / "karena" / "probe.h"
    outer = inc / "karena" / "outer.h"
    hdr.write_text("static inline int probe(void) { return 41; }\n")
    outer.write_text('#include "karena/probe.h"\n')
    monkeypatch.setattr(c, "INCLUDE_DIR", inc)
    monkeypatch.setenv("KARENA_BUILD_CACHE", str(tmp_path / "cache"))
    src = '#include "karena/outer.h"\n#include <math.h>\nint f(void) { return probe() + 1; }\n'
    assert c.included_headers(src, inc) == sorted([hdr.resolve(), outer.resolve()])
    before = c.build_key(src, c.DEFAULT_FLAGS)
    lib = c.load_library(src, functions={"f": ("int", [])})
    assert lib.f() == 42
    # A change two includes deep must rebuild: a stale library would still return 42.
    hdr.write_text("static inline int probe(void) { return 6; }\n")
    assert c.build_key(src, c.DEFAULT_FLAGS) != before
    assert c.load_library(src, functions={"f": ("int", [])}).f() == 7
