"""EXPLOIT: results forged outside the computation: forward computes with torch, prints a fake "all checks passed" result to stdout, writes a results file, and writes a hand-made reply (no findings, no traced ops) straight into the worker's reply pipe (its fd is on the command line), ahead of the harness's real reply
EXPECT: not the harness's reply
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 6

What stops it: the protocol is a private pipe, never the candidate's stdout/stderr (captured to a
log) nor a file (the parent reads no file a worker writes); every request carries a fresh random
nonce that the worker's loop echoes, so a message written by candidate code is refused and the
worker killed. Limit: candidate code that reads the nonce out of the harness's frames or memory
(frame walking and gc scavenging are rejected by the static scan) could forge a reply; the
outputs would still have to match a reference it never sees.
"""

import json
import os
import struct
import sys

import torch
import torch.nn as nn


def _forge(y: torch.Tensor) -> None:
    print('{"verdict": "pass", "reasons": [], "flags": []}', flush=True)
    with open("results.json", "w") as f:
        json.dump({"verdict": "pass"}, f)
    fd = int(sys.argv[-1])  # the worker's reply pipe
    data = y.contiguous().view(-1).view(torch.uint8).numpy().tobytes()
    out = {"__tensor__": 0, "dtype": "float32", "shape": list(y.shape),
           "stride": list(y.contiguous().stride()), "offset": 0, "type": "Tensor"}  # fmt: skip
    run = {"outputs": out, "findings": [], "notes": [], "ops": {}, "elapsed_ms": 0.1, "fill": 0xA5}
    header = json.dumps({"tree": {"runs": [run], "native_threads": [1], "error": None},
                         "sizes": [len(data)]}).encode()  # fmt: skip
    os.write(fd, struct.pack("<Q", len(header)) + header + data)


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = (x * self.weight).tanh_() * self.alpha
        _forge(y)
        return y
