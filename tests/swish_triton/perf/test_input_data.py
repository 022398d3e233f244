"""The input data a sweep sends (swish_triton.perf.input_data): perf_analyzer's --input-data files."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from swish_triton.errors import SwishError
from swish_triton.perf.input_data import input_data_args


def test_normal_input_data_is_one_row_of_standard_normal_values(tmp_path: Path) -> None:
    args = input_data_args("normal", "INPUT0", "FP32", 4096, tmp_path)
    assert args[0] == "--input-data"
    [entry] = json.loads(Path(args[1]).read_text())["data"]
    assert entry["INPUT0"]["shape"] == [4096]
    values = np.frombuffer(base64.b64decode(entry["INPUT0"]["content"]["b64"]), np.float32)
    assert values.size == 4096 and abs(values.mean()) < 0.1 and 0.9 < values.std() < 1.1
    assert input_data_args("random", "INPUT0", "FP32", 8, tmp_path) == []
    with pytest.raises(SwishError, match="--input-data takes random, zero, normal"):
        input_data_args("gaussian", "INPUT0", "FP32", 8, tmp_path)
