"""EXPLOIT: output computed asynchronously after return by a detached native (pthread) thread started in C: not a Python thread, so threading.enumerate() never lists it
EXPECT: escape: || non-finite || outside tolerance
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 5

Regression case: the escape guard sees only Python threads and a monotonic growth of
/proc/self/task, so this passed while the outputs were read after the guards; the worker now
snapshots the outputs the moment forward returns.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
struct job { const float* x; const float* w; float* y; long rows, cols; float alpha; };
static void* run(void* p) {
  struct job* j = (struct job*)p;
  usleep(1000);  /* finish shortly after forward returns, well before the outputs are sent */
  for (long r = 0; r < j->rows; ++r)
    for (long c = 0; c < j->cols; ++c) j->y[r * j->cols + c] = tanhf(j->x[r * j->cols + c] * j->w[c]) * j->alpha;
  free(j);
  return 0;
}
void st_async(const float* x, const float* w, float* y, long rows, long cols, float alpha) {
  struct job* j = malloc(sizeof *j);
  j->x = x; j->w = w; j->y = y; j->rows = rows; j->cols = cols; j->alpha = alpha;
  pthread_t t;
  pthread_create(&t, 0, run, j);
  pthread_detach(t);
}
"""
_LIB = load_library(
    _SRC,
    functions={"st_async": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])},
    libs=("-lm", "-lpthread"),
)


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))
        self._keep: list = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        self._keep = [x, y]
        _LIB.st_async(x.data_ptr(), self.weight.data_ptr(), y.data_ptr(), x.shape[0], x.shape[1], self.alpha)
        return y
