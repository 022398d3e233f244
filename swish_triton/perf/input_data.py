"""What perf_analyzer sends as the input tensor: its own random bytes, zeros, or ordinary activations.

perf_analyzer's default ``random`` data are random bit patterns: for FP32 about a quarter of the values are beyond
±1e26 and some are NaN or infinity, which no activation looks like and which take a model's slow paths (Swish's
``exp`` overflows there). ``normal`` sends values drawn from N(0, 1), like the activations Swish is applied to, as a
perf_analyzer input file (``--input-data FILE``, base64 of the exact bytes); ``zero`` sends zeros.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from swish_triton.errors import SwishError

KINDS = ("random", "zero", "normal")
NUMPY_TYPES = {"FP32": np.float32, "FP16": np.float16, "FP64": np.float64}


def input_data_args(kind: str, name: str, datatype: str, length: int, folder: Path, seed: int = 0) -> list[str]:
    """perf_analyzer's arguments for ``kind`` (one of ``KINDS``, or the path of perf_analyzer input JSON)."""
    if kind == "random":
        return []
    if kind == "zero":
        return ["--input-data", "zero"]
    if kind == "normal":
        if datatype not in NUMPY_TYPES:
            raise SwishError(f"--input-data normal takes FP16, FP32 or FP64 inputs, not {datatype}")
        values = np.random.default_rng(seed).standard_normal(length).astype(NUMPY_TYPES[datatype])
        content = {"b64": base64.b64encode(values.tobytes()).decode()}
        path = folder / f"input-normal-{name}-{datatype}-{length}-{seed}.json"
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"data": [{name: {"content": content, "shape": [length]}}]}))
        return ["--input-data", str(path)]
    if Path(kind).is_file():
        return ["--input-data", str(Path(kind).resolve())]
    raise SwishError(f"--input-data takes {', '.join(KINDS)} or a perf_analyzer input file, not {kind!r}")
