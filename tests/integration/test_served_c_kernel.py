"""The served Swish models compute on the CPU with the plugin library's C kernel (swish_forward_host) when the library
is there (SWISH_KERNELS_LIB), and with NumPy when a model says cpu_kernel: numpy; both validate against the float64
oracle over HTTP and gRPC. No GPU needed: the library loads on any host. 127.0.0.1 only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from swish_triton.clients.validation import run_validation
from swish_triton.reference import compare_to_ref
from swish_triton.serving.model_variants import Variant, write_repository
from tests.plugin.plugin_builds import header_dir, missing_tools, plugin_build
from tests.served import infer, server_on_free_ports
from tests.support import REPO


@pytest.fixture(scope="module")
def kernels_library() -> Path:
    missing = missing_tools() or (None if header_dir("11.1") else "TensorRT 11.1 headers not found")
    if missing:
        pytest.skip(f"the plugin library cannot be built: {missing}")
    return plugin_build("11.1") / "libswish_kernels.so"


def test_served_models_use_the_c_kernel_and_validate(
    kernels_library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWISH_KERNELS_LIB", str(kernels_library))
    variants = [
        Variant("swish_py", "swish_py", parameters=(("device", "cpu"),)),
        Variant("swish_py_fp16", "swish_py_fp16", parameters=(("device", "cpu"),)),
        Variant("swish_numpy", "swish_py", parameters=(("device", "cpu"), ("cpu_kernel", "numpy"))),
    ]
    repo = write_repository(REPO / "model_repository", tmp_path / "repo", variants)
    log = tmp_path / "tritonserver.log"
    server = server_on_free_ports(repo, log_path=log)
    with server:
        for protocol, url in (("http", server.http_url), ("grpc", server.grpc_url)):
            for model in ("swish_py", "swish_py_fp16", "swish_numpy"):
                report = run_validation(url, protocol, model)
                assert report.ok, f"{model} over {protocol}: {report.summary()}"
        # Every float32 exponent and sign, the infinities and NaN, through the C kernel in one request.
        x = np.arange(0, 2**32, 65537, dtype=np.uint64).astype(np.uint32).view(np.float32).reshape(1, -1)
        y = infer(server, "grpc", x)
        with np.errstate(invalid="ignore"):
            result = compare_to_ref(x, y, "float32")
        assert result.ok, result.describe()
    text = log.read_text()
    assert f"float32 C kernel of {kernels_library}" in text, text[-3000:]
    # The one-call-per-batch extension beside the library (built where Python's headers are) is what the models use.
    way = "swish_batch extension" if (kernels_library.parent / "swish_batch.abi3.so").is_file() else "ctypes"
    assert f"one call per batch through {way}" in text, text[-3000:]
    assert "swish_numpy instance" in text and "cpu_kernel=numpy in config.pbtxt" in text
