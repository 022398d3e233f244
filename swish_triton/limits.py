"""Batch and length limits: the one source of truth for model configs, the engine builder and the tests."""

from __future__ import annotations

from dataclasses import dataclass

# The largest input one request may carry to a Python-backend model, in bytes. tritonserver 2.51 enforces no HTTP
# body limit of its own (later releases default --http-max-input-size to 64 MB; gRPC allows 2 GiB), so the models
# enforce this one and answer INVALID_ARG instead of computing arbitrarily large tensors.
MAX_REQUEST_BYTES = 64 * 1024 * 1024

# Triton's max_batch_size for every Swish model (Python backend and TensorRT engines alike).
MAX_BATCH_SIZE = 64


@dataclass(frozen=True)
class Profile:
    """A TensorRT optimization profile over an input of shape [batch, length]."""

    min_batch: int
    opt_batch: int
    max_batch: int
    min_length: int
    opt_length: int
    max_length: int

    def shapes(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        return (
            (self.min_batch, self.min_length),
            (self.opt_batch, self.opt_length),
            (self.max_batch, self.max_length),
        )


# The engines' only profile. The batch bounds match MAX_BATCH_SIZE so that Triton's dynamic batcher can never form
# a batch the engine rejects; the length bounds cap what a request may send to a TensorRT model.
ENGINE_PROFILE = Profile(
    min_batch=1,
    opt_batch=16,
    max_batch=MAX_BATCH_SIZE,
    min_length=1,
    opt_length=1024,
    max_length=65536,
)
