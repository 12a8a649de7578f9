"""Length-prefixed messages between the harness and its workers: a JSON header plus raw buffers.

No pickle: the parent decodes what a candidate's process sends, and unpickling would let that
process run code in the checker. Tensors travel as (dtype, shape, strides, offset, bytes of the
span they cover), so non-contiguous and expanded inputs keep their layout.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

_LEN = struct.Struct("<Q")
MAX_HEADER_BYTES = 64 << 20
MAX_BUFFER_BYTES = 16 << 30


class ProtocolError(RuntimeError):
    """The peer sent something that is not a well-formed message (or closed the pipe)."""


class MessageTooLarge(ProtocolError):
    """The peer announced a message larger than this process may receive (``max_bytes``)."""

    def __init__(self, nbytes: int, max_bytes: int):
        super().__init__(f"a message of {nbytes} bytes exceeds the {max_bytes} bytes this process can take")
        self.nbytes, self.max_bytes = nbytes, max_bytes


def _dtype_names() -> dict[str, Any]:
    import torch

    names = [
        "float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8",
        "bool", "complex64", "complex128", "uint16", "uint32", "uint64",
        "float8_e4m3fn", "float8_e5m2",
    ]  # fmt: skip
    return {n: getattr(torch, n) for n in names if hasattr(torch, n)}


_DTYPES: dict[str, Any] | None = None


def dtypes() -> dict[str, Any]:
    global _DTYPES
    if _DTYPES is None:
        _DTYPES = _dtype_names()
    return _DTYPES


def encode(obj: Any) -> tuple[Any, list[memoryview]]:
    """Split ``obj`` into a JSON-able tree and a list of raw buffers (one per tensor).

    The buffers are views of the tensors' memory (no copy for contiguous tensors).
    """
    buffers: list[memoryview] = []
    return _enc(obj, buffers), buffers


# _enc and _dec are module-level on purpose: a recursive closure is a reference cycle, and the cycle
# kept every buffer of a message (hundreds of MiB) alive until the garbage collector happened to run.
def _enc(v: Any, buffers: list[memoryview]) -> Any:
    import torch

    if isinstance(v, torch.Tensor):
        return _enc_tensor(v, buffers)
    if isinstance(v, tuple):
        return {"__tuple__": [_enc(x, buffers) for x in v]}
    if isinstance(v, list):
        return [_enc(x, buffers) for x in v]
    if isinstance(v, dict):
        return {"__dict__": [[_enc(k, buffers), _enc(x, buffers)] for k, x in v.items()]}
    if isinstance(v, bytes):
        return {"__bytes__": v.hex()}
    if isinstance(v, float) and v != v:
        return {"__float__": "nan"}
    if isinstance(v, float) and v in (float("inf"), float("-inf")):
        return {"__float__": "inf" if v > 0 else "-inf"}
    if v is None or isinstance(v, bool | int | float | str):
        return v
    # torch.dtype / torch.device and other simple values travel as text
    return {"__repr__": repr(v), "__pytype__": type(v).__name__}


def _enc_tensor(v: Any, buffers: list[memoryview]) -> dict[str, Any]:
    import torch

    t = v.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    shape, stride, offset = list(t.shape), list(t.stride()), 0
    if t.numel() == 0:
        flat = t.reshape(-1)
        stride = [1] * len(shape)
    elif t.is_contiguous():
        flat = t.reshape(-1)
        stride = list(t.stride())
    else:
        span = 1 + sum((s - 1) * st for s, st in zip(shape, stride, strict=True) if s > 0)
        flat = torch.as_strided(t, (span,), (1,), t.storage_offset()).clone()
    flat = flat.contiguous()
    raw = flat.view(torch.uint8) if flat.element_size() > 0 and flat.numel() else flat
    buffers.append(memoryview(raw.numpy().data).cast("B") if raw.numel() else memoryview(b""))
    return {
        "__tensor__": len(buffers) - 1,
        "dtype": str(t.dtype).removeprefix("torch."),
        "shape": shape,
        "stride": stride,
        "offset": offset,
        "type": type(v).__name__,
    }


def decode(tree: Any, buffers: list[bytearray]) -> Any:
    """Inverse of ``encode``. Validates everything it reads: the sender may be hostile.

    Tensors share memory with ``buffers`` (no copy): each buffer is owned by the message.
    """
    return _dec(tree, buffers, dtypes())


def _dec(v: Any, buffers: list[bytearray], table: dict[str, Any]) -> Any:
    if isinstance(v, list):
        return [_dec(x, buffers, table) for x in v]
    if not isinstance(v, dict):
        return v
    if "__tensor__" in v:
        return _dec_tensor(v, buffers, table)
    if "__tuple__" in v:
        return tuple(_dec(x, buffers, table) for x in v["__tuple__"])
    if "__dict__" in v:
        return {_dec(k, buffers, table): _dec(x, buffers, table) for k, x in v["__dict__"]}
    if "__bytes__" in v:
        return bytes.fromhex(v["__bytes__"])
    if "__float__" in v:
        return float(v["__float__"])
    if "__repr__" in v:
        return _Opaque(str(v["__repr__"]), str(v.get("__pytype__", "")))
    return {k: _dec(x, buffers, table) for k, x in v.items()}


def _dec_tensor(v: dict[str, Any], buffers: list[bytearray], table: dict[str, Any]) -> Any:
    import torch

    idx = v["__tensor__"]
    if not isinstance(idx, int) or not 0 <= idx < len(buffers):
        raise ProtocolError("tensor refers to a missing buffer")
    dtype = table.get(str(v.get("dtype")))
    if dtype is None:
        raise ProtocolError(f"unknown dtype {v.get('dtype')!r}")
    shape, stride = v.get("shape"), v.get("stride")
    if not (isinstance(shape, list) and isinstance(stride, list) and len(shape) == len(stride)):
        raise ProtocolError("bad tensor shape/stride")
    if not all(isinstance(s, int) and s >= 0 for s in shape + stride):
        raise ProtocolError("bad tensor shape/stride")
    raw = buffers[idx]
    itemsize = torch.empty((), dtype=dtype).element_size()
    if len(raw) % itemsize:
        raise ProtocolError("buffer size is not a multiple of the element size")
    numel = 1
    for s in shape:
        numel *= s
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
    span = 1 + sum((s - 1) * st for s, st in zip(shape, stride, strict=True) if s > 0)
    if span > flat.numel():
        raise ProtocolError("tensor span exceeds its buffer")
    return torch.as_strided(flat, shape, stride)


class _Opaque:
    """A value that has no wire form (a dtype, a device, an object); kept as its repr."""

    def __init__(self, text: str, pytype: str):
        self.text, self.pytype = text, pytype

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Opaque) and (self.text, self.pytype) == (other.text, other.pytype)

    def __hash__(self) -> int:
        return hash((self.text, self.pytype))


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _wait(fd: int, deadline: float | None) -> None:
    if deadline is not None:
        wait = deadline - time.monotonic()
        if wait <= 0 or not select.select([fd], [], [], wait)[0]:
            raise TimeoutError("worker did not answer in time")


def _read_exact(fd: int, n: int, deadline: float | None = None) -> bytearray:
    """Read ``n`` bytes straight into one buffer: no chunk list, no joined copy."""
    buf = bytearray(n)
    view = memoryview(buf)
    pos = 0
    while pos < n:
        _wait(fd, deadline)
        got = os.readv(fd, [view[pos : min(n, pos + (1 << 24))]])
        if not got:
            raise ProtocolError("peer closed the pipe")
        pos += got
    view.release()
    return buf


def send(fd: int, message: dict[str, Any]) -> None:
    tree, buffers = encode(message)
    header = json.dumps({"tree": tree, "sizes": [len(b) for b in buffers]}).encode()
    _write_all(fd, _LEN.pack(len(header)) + header)
    for b in buffers:
        _write_all(fd, b)


def recv(fd: int, deadline: float | None = None, max_bytes: int | None = None) -> dict[str, Any]:
    """Read one message; ``deadline`` (time.monotonic) bounds the whole read, chunk by chunk.

    ``max_bytes`` bounds the buffers' total, checked before any is allocated (MessageTooLarge).
    """
    (size,) = _LEN.unpack(_read_exact(fd, _LEN.size, deadline))
    if size > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {size} bytes is too large")
    try:
        header = json.loads(_read_exact(fd, size, deadline))
        sizes = header["sizes"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError(f"malformed header: {exc}") from None
    if not isinstance(sizes, list) or not all(
        isinstance(s, int) and 0 <= s <= MAX_BUFFER_BYTES for s in sizes
    ):
        raise ProtocolError("malformed buffer sizes")
    if max_bytes is not None and sum(sizes) > max_bytes:
        raise MessageTooLarge(sum(sizes), max_bytes)
    buffers = [_read_exact(fd, s, deadline) for s in sizes]
    message = decode(header["tree"], buffers)
    if not isinstance(message, dict):
        raise ProtocolError("message is not a dict")
    return message
