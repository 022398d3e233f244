"""The serving limits (swish_triton.limits): the TensorRT optimization profile agrees with the batch limit."""

from __future__ import annotations

from swish_triton.limits import ENGINE_PROFILE, MAX_BATCH_SIZE


def test_profile_is_consistent() -> None:
    p = ENGINE_PROFILE
    assert 1 <= p.min_batch <= p.opt_batch <= p.max_batch == MAX_BATCH_SIZE
    assert 1 <= p.min_length <= p.opt_length <= p.max_length
