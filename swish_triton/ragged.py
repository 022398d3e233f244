"""Ragged batches: the arrays of several requests (any shapes) computed as one flat array, then handed back.

Used by the Python-backend models on both paths (NumPy on the CPU, the plugin's kernels on the GPU).
"""

from __future__ import annotations

import numpy as np


def split_like(flat: np.ndarray, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Views of ``flat`` with the shapes of ``arrays``, in order (cheaper than np.split for many small pieces)."""
    if not arrays:
        return []
    shape = arrays[0].shape
    if all(a.shape == shape for a in arrays):  # the usual batch: requests of one shape, one reshape for all
        return list(flat[: len(arrays) * arrays[0].size].reshape((len(arrays), *shape)))
    out = []
    start = 0
    for a in arrays:
        out.append(flat[start : start + a.size].reshape(a.shape))
        start += a.size
    return out
