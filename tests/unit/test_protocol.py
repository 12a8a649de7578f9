"""The worker wire format: round trips keep layout; hostile messages are refused, never unpickled."""

import json
import os
import struct
import threading

import pytest
import torch

from kernelarena.sandbox import protocol

pytestmark = pytest.mark.unit


def _roundtrip(obj):
    r, w = os.pipe()
    t = threading.Thread(target=protocol.send, args=(w, obj))
    t.start()
    out = protocol.recv(r)
    t.join()
    os.close(r)
    os.close(w)
    return out


def test_roundtrip_keeps_values_and_layout() -> None:
    x = torch.randn(5, 7)
    msg = {
        "t": x.t(),  # non-contiguous: strides kept
        "e": torch.randn(3, 1).expand(3, 4),  # expanded: stride 0 kept
        "b": torch.randn(4).bfloat16(),
        "i": torch.arange(6, dtype=torch.int64).reshape(2, 3),
        "empty": torch.empty(0, 3),
        "nested": (1, 2.5, [None, "s"], float("nan"), float("-inf")),
    }
    out = _roundtrip(msg)
    assert torch.equal(out["t"], x.t()) and out["t"].stride() == x.t().stride()
    assert out["e"].stride() == (1, 0) and torch.equal(out["e"], msg["e"])
    assert out["b"].dtype == torch.bfloat16 and torch.equal(out["b"], msg["b"])
    assert torch.equal(out["i"], msg["i"]) and out["empty"].shape == (0, 3)
    n = out["nested"]
    assert n[0] == 1 and n[1] == 2.5 and n[2] == [None, "s"] and n[3] != n[3] and n[4] == float("-inf")


def _raw(header: dict, buffers: list[bytes]) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(buffers)


@pytest.mark.parametrize(
    "header,buffers,match",
    [
        (
            {"tree": {"__tensor__": 0, "dtype": "evil", "shape": [1], "stride": [1]}, "sizes": [4]},
            [b"\0" * 4],
            "dtype",
        ),
        (
            {"tree": {"__tensor__": 0, "dtype": "float32", "shape": [100], "stride": [1]}, "sizes": [4]},
            [b"\0" * 4],
            "span",
        ),
        (
            {"tree": {"__tensor__": 3, "dtype": "float32", "shape": [1], "stride": [1]}, "sizes": [4]},
            [b"\0" * 4],
            "missing",
        ),
        ({"tree": [1, 2], "sizes": []}, [], "not a dict"),
    ],
)
def test_hostile_messages_are_refused(header, buffers, match) -> None:
    r, w = os.pipe()
    os.write(w, _raw(header, buffers))
    with pytest.raises(protocol.ProtocolError, match=match):
        protocol.recv(r)
    os.close(r)
    os.close(w)


def test_closed_pipe_is_protocol_error() -> None:
    r, w = os.pipe()
    os.close(w)
    with pytest.raises(protocol.ProtocolError):
        protocol.recv(r)
    os.close(r)


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_messages_leave_no_reference_cycles() -> None:
    # Regression: recursive closures in encode/decode were reference cycles that kept every buffer of
    # a message (hundreds of MiB per verification case) alive until the garbage collector ran.
    import gc
    import os

    import torch

    r, w = os.pipe()
    try:
        gc.collect()
        gc.disable()
        protocol.send(w, {"x": torch.arange(12.0).reshape(3, 4).t(), "y": [(1, 2.5)], "z": {"k": b"ab"}})
        got = protocol.recv(r)
        assert torch.equal(got["x"], torch.arange(12.0).reshape(3, 4).t())
        del got
        assert gc.collect() == 0
    finally:
        gc.enable()
        os.close(r)
        os.close(w)


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_announced_size_is_checked_before_allocating() -> None:
    import os

    import torch

    r, w = os.pipe()
    try:
        protocol.send(w, {"x": torch.zeros(1024)})
        with pytest.raises(protocol.MessageTooLarge):
            protocol.recv(r, max_bytes=100)
    finally:
        os.close(r)
        os.close(w)
