"""The nudge between timed calls (``timing.worker_ops._nudge``): every call sees new inputs, and
integer inputs stay valid for tasks whose ids are sorted (offsets, segment ids).

Regression: integer elements took the value of a random other element, so grouped_expert_ffn's
expert offsets decreased after a few calls; its kernel (correct on valid offsets) then disagreed
with the reference in a sampled timed call and `make run` rejected the built-in solution."""

import random

import pytest
import torch

from kernelarena.timing.worker_ops import _nudge

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


def test_sorted_integer_inputs_stay_sorted_and_do_not_drift() -> None:
    rng, undo = random.Random(0), {}
    offsets = torch.tensor([0, 3, 3, 10, 17, 40, 41, 64])
    segment_ids = (torch.arange(64) // 5 + 7).reshape(4, 16)  # sorted along the last dimension
    original = [offsets.clone(), segment_ids.clone()]
    seen, changed = set(), 0
    for _ in range(2000):
        before = [offsets.clone(), segment_ids.clone()]
        _nudge([offsets, segment_ids], None, rng, undo)
        changed += int(not torch.equal(before[0], offsets) or not torch.equal(before[1], segment_ids))
        assert bool((offsets[1:] >= offsets[:-1]).all()), offsets
        assert bool((segment_ids[:, 1:] >= segment_ids[:, :-1]).all()), segment_ids
        # one element at most differs from the task's input: nothing accumulates
        assert int((offsets != original[0]).sum()) <= 1 and int((segment_ids != original[1]).sum()) <= 1
        seen.add((tuple(offsets.tolist()), tuple(segment_ids.flatten().tolist())))
    assert changed > 1600  # most calls see inputs the previous call did not
    assert len(seen) > 50


def test_floats_change_and_only_allowed_inputs_are_touched() -> None:
    rng = random.Random(1)
    x, ids = torch.randn(8, 8), torch.tensor([[1, 2], [3, 4]])
    x0, ids0 = x.clone(), ids.clone()
    _nudge([x, ids], [0], rng)
    assert not torch.equal(x, x0) and torch.equal(ids, ids0)
    assert int((x != x0).sum()) == 1 and bool((torch.sign(x) == torch.sign(x0)).all())


def test_integer_column_vector_uses_its_long_dimension() -> None:
    rng, undo = random.Random(2), {}
    col = torch.arange(10).reshape(10, 1)
    for _ in range(50):
        _nudge([col], None, rng, undo)
        assert bool((col[1:] >= col[:-1]).all()) and len(set(col.flatten().tolist())) == 9
