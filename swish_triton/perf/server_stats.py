"""Triton's per-model statistics, reduced to what tells whether dynamic batching batches and where time goes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields

import tritonclient.http as httpclient


@contextmanager
def http_client(http_url: str) -> Iterator[httpclient.InferenceServerClient]:
    """A tritonclient HTTP client of ``http_url`` for a few calls, closed afterwards."""
    client = httpclient.InferenceServerClient(http_url)
    try:
        yield client
    finally:
        client.close()


@dataclass(frozen=True)
class BatchingStats:
    """Cumulative counters of one model (all versions); subtract two snapshots to get one measurement's share."""

    inference_count: int
    execution_count: int
    queue_ns: int
    compute_infer_ns: int
    compute_input_ns: int = 0
    compute_output_ns: int = 0
    success_count: int = 0  # requests, where inference_count counts batch rows

    @property
    def average_batch(self) -> float:
        return self.inference_count / self.execution_count if self.execution_count else 0.0

    def __sub__(self, other: BatchingStats) -> BatchingStats:
        return BatchingStats(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))


def batching_stats(http_url: str, model: str) -> BatchingStats:
    with http_client(http_url) as client:
        stats = client.get_inference_statistics(model)["model_stats"]
    total = BatchingStats(0, 0, 0, 0)
    for version in stats:
        inference = version.get("inference_stats", {})

        def ns(key: str, inference: dict = inference) -> int:
            return int(inference.get(key, {}).get("ns", 0))

        total = BatchingStats(
            total.inference_count + int(version.get("inference_count", 0)),
            total.execution_count + int(version.get("execution_count", 0)),
            total.queue_ns + ns("queue"),
            total.compute_infer_ns + ns("compute_infer"),
            total.compute_input_ns + ns("compute_input"),
            total.compute_output_ns + ns("compute_output"),
            total.success_count + int(inference.get("success", {}).get("count", 0)),
        )
    return total
