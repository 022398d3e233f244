"""Triton's per-model statistics, reduced to what tells whether dynamic batching batches."""

from __future__ import annotations

from dataclasses import dataclass

import tritonclient.http as httpclient


@dataclass(frozen=True)
class BatchingStats:
    inference_count: int
    execution_count: int
    queue_ns: int
    compute_infer_ns: int

    @property
    def average_batch(self) -> float:
        return self.inference_count / self.execution_count if self.execution_count else 0.0

    def __sub__(self, other: BatchingStats) -> BatchingStats:
        return BatchingStats(
            self.inference_count - other.inference_count,
            self.execution_count - other.execution_count,
            self.queue_ns - other.queue_ns,
            self.compute_infer_ns - other.compute_infer_ns,
        )


def batching_stats(http_url: str, model: str) -> BatchingStats:
    client = httpclient.InferenceServerClient(http_url)
    try:
        stats = client.get_inference_statistics(model)["model_stats"]
    finally:
        client.close()
    total = BatchingStats(0, 0, 0, 0)
    for version in stats:
        inference = version.get("inference_stats", {})
        total = BatchingStats(
            total.inference_count + int(version.get("inference_count", 0)),
            total.execution_count + int(version.get("execution_count", 0)),
            total.queue_ns + int(inference.get("queue", {}).get("ns", 0)),
            total.compute_infer_ns + int(inference.get("compute_infer", {}).get("ns", 0)),
        )
    return total
