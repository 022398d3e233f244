"""The tutorial's TensorRT experiments as tests: plugin vs ReLU vs native Swish, dynamic shapes, serialization,
several execution contexts in several threads. Every output is checked against swish_ref.

Needs TensorRT's Python package and library, a GPU, device memory through cuda-python (what NGC TensorRT containers
and TensorRT's samples use), CuPy or PyTorch, and, for the plugin models, libswish.so (.build/plugin/ or
$SWISH_PLUGIN_LIB). Whatever is missing skips with the reason. Engines are built in memory from the repository's
configs, so these tests never touch model_repository/; latencies are printed, never asserted.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from swish_triton.engines import configs, host, networks, plugin, records
from swish_triton.limits import ENGINE_PROFILE
from swish_triton.reference import compare_to_ref, swish_ref
from tests.support import REPO

pytestmark = pytest.mark.tensorrt

DYNAMIC_SHAPES = [(1, 16), (8, 16), (32, 16)]
# The native graph is TensorRT's own fused sigmoid * x, whose accuracy TensorRT does not state in ulp; it gets a
# looser bound than the plugin (reference.compare_to_ref's ulp rule) but one that still catches a wrong formula.
NATIVE_RTOL, NATIVE_ATOL = 1e-4, 1e-6


# --------------------------------------------------------------------------------------------------------------------
# Device memory through whichever CUDA Python library is importable


@dataclass
class DeviceBuffer:
    ptr: int
    nbytes: int
    owner: Any = None  # keeps the library's allocation alive


@dataclass
class Stream:
    handle: int  # what execute_async_v3 takes
    owner: Any = None


class CudaPython:
    """cuda-python's runtime API (``cuda.bindings.runtime``; ``cuda.cudart`` before cuda-python 12.6)."""

    name = "cuda-python"

    def __init__(self) -> None:
        try:
            from cuda.bindings import runtime as rt
        except ImportError:
            from cuda import cudart as rt  # type: ignore[no-redef]
        self.rt = rt
        self._check(rt.cudaFree(0))  # creates the context, or fails here if there is no usable GPU

    def _check(self, result: tuple[Any, ...]) -> Any:
        err = result[0]
        if err != self.rt.cudaError_t.cudaSuccess:
            raise RuntimeError(f"CUDA error {self.rt.cudaGetErrorName(err)[1]!r}")
        return result[1] if len(result) > 1 else None

    def alloc(self, nbytes: int) -> DeviceBuffer:
        ptr = self._check(self.rt.cudaMalloc(max(nbytes, 1)))
        return DeviceBuffer(int(ptr), nbytes, _Finalizer(lambda: self.rt.cudaFree(ptr)))

    def stream(self) -> Stream:
        s = self._check(self.rt.cudaStreamCreate())
        return Stream(int(s), _Finalizer(lambda: self.rt.cudaStreamDestroy(s)))

    def upload(self, buf: DeviceBuffer, host: np.ndarray, stream: Stream) -> None:
        host = np.ascontiguousarray(host)
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self.rt.cudaMemcpyAsync(buf.ptr, host.ctypes.data, host.nbytes, kind, stream.handle))
        self.sync(stream)  # the host array may be freed once this returns

    def download(self, host: np.ndarray, buf: DeviceBuffer, stream: Stream) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self.rt.cudaMemcpyAsync(host.ctypes.data, buf.ptr, host.nbytes, kind, stream.handle))
        self.sync(stream)

    def sync(self, stream: Stream) -> None:
        self._check(self.rt.cudaStreamSynchronize(stream.handle))


class CuPy:
    name = "cupy"

    def __init__(self) -> None:
        import cupy as cp

        self.cp = cp
        cp.cuda.runtime.getDeviceCount()

    def alloc(self, nbytes: int) -> DeviceBuffer:
        mem = self.cp.cuda.alloc(max(nbytes, 1))
        return DeviceBuffer(int(mem.ptr), nbytes, mem)

    def stream(self) -> Stream:
        s = self.cp.cuda.Stream(non_blocking=True)
        return Stream(int(s.ptr), s)

    def _copy(self, dst: int, src: int, nbytes: int, kind: int, stream: Stream) -> None:
        self.cp.cuda.runtime.memcpyAsync(dst, src, nbytes, kind, stream.handle)
        self.sync(stream)

    def upload(self, buf: DeviceBuffer, host: np.ndarray, stream: Stream) -> None:
        host = np.ascontiguousarray(host)
        self._copy(buf.ptr, host.ctypes.data, host.nbytes, self.cp.cuda.runtime.memcpyHostToDevice, stream)

    def download(self, host: np.ndarray, buf: DeviceBuffer, stream: Stream) -> None:
        self._copy(host.ctypes.data, buf.ptr, host.nbytes, self.cp.cuda.runtime.memcpyDeviceToHost, stream)

    def sync(self, stream: Stream) -> None:
        stream.owner.synchronize()


class Torch:
    name = "torch"

    def __init__(self) -> None:
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("torch sees no CUDA device")
        self.torch = torch

    def alloc(self, nbytes: int) -> DeviceBuffer:
        t = self.torch.empty(max(nbytes, 1), dtype=self.torch.uint8, device="cuda")
        return DeviceBuffer(int(t.data_ptr()), nbytes, t)

    def stream(self) -> Stream:
        s = self.torch.cuda.Stream()
        return Stream(int(s.cuda_stream), s)

    def upload(self, buf: DeviceBuffer, host: np.ndarray, stream: Stream) -> None:
        src = self.torch.from_numpy(np.ascontiguousarray(host).reshape(-1).view(np.uint8))
        with self.torch.cuda.stream(stream.owner):
            buf.owner[: host.nbytes].copy_(src)
        self.sync(stream)

    def download(self, host: np.ndarray, buf: DeviceBuffer, stream: Stream) -> None:
        with self.torch.cuda.stream(stream.owner):
            data = buf.owner[: host.nbytes].cpu().numpy()
        host.reshape(-1).view(np.uint8)[:] = data

    def sync(self, stream: Stream) -> None:
        stream.owner.synchronize()


class _Finalizer:
    """Runs ``release`` when the owning DeviceBuffer/Stream is garbage collected."""

    def __init__(self, release: Callable[[], Any]) -> None:
        self._release = release

    def __del__(self) -> None:
        try:
            self._release()
        except Exception:  # noqa: BLE001, S110 - interpreter shutdown: the context may already be gone
            pass


def find_cuda() -> tuple[Any, list[str]]:
    """The first CUDA library that imports and sees a GPU, and why the others did not."""
    why = []
    for backend in (CudaPython, CuPy, Torch):
        try:
            return backend(), why
        except Exception as e:  # noqa: BLE001 - ImportError, no driver, no device: all mean "try the next"
            why.append(f"{backend.name}: {e}")
    return None, why


# --------------------------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def trt() -> Any:
    try:
        return host.import_tensorrt()
    except configs.BuildError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def cuda(trt: Any) -> Any:
    backend, why = find_cuda()
    if backend is None:
        pytest.skip("no CUDA Python library with a GPU: " + "; ".join(why))
    return backend


@dataclass
class Built:
    model: configs.EngineModel
    io: configs.ModelIO
    engine: Any  # trt.ICudaEngine
    build_seconds: float


@dataclass
class Engines:
    runtime: Any
    built: dict[str, Built] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Built:
        if name not in self.built:
            pytest.skip(f"{name}: {self.missing.get(name, 'not built')}")
        return self.built[name]


@pytest.fixture(scope="module")
def engines(trt: Any, cuda: Any, tmp_path_factory: pytest.TempPathFactory) -> Engines:
    """Every model of the builder's table, built once in memory from model_repository/'s configs."""
    cache = tmp_path_factory.mktemp("trt_cache") / "timing.cache"
    logger = trt.Logger(trt.Logger.WARNING)
    result = Engines(runtime=trt.Runtime(logger))
    lib = plugin.plugin_lib_path()
    for model in configs.ENGINE_MODELS:
        if model.needs_plugin and not lib.is_file():
            result.missing[model.name] = f"plugin library not found at {lib} (make plugin, or set SWISH_PLUGIN_LIB)"
            continue
        io = configs.model_io(model, configs.DEFAULT_MODEL_REPOSITORY)
        start = time.perf_counter()
        plan = networks.build_serialized_engine(model, io, plugin_lib=lib, timing_cache=cache)
        seconds = time.perf_counter() - start
        engine = result.runtime.deserialize_cuda_engine(plan)
        assert engine is not None, f"{model.name}: the plan just built does not deserialize"
        result.built[model.name] = Built(model, io, engine, seconds)
    return result


class Runner:
    """One execution context with its own stream and buffers: set shape, copy in, enqueue, copy out."""

    def __init__(self, built: Built, cuda: Any, engine: Any = None) -> None:
        import tensorrt as trt

        self.engine = engine if engine is not None else built.engine
        self.io = built.io
        self.cuda = cuda
        self.context = self.engine.create_execution_context()
        self.stream = cuda.stream()
        self.in_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.io.input_name)))
        self.out_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.io.output_name)))
        self._buffers: dict[str, DeviceBuffer] = {}

    def _buffer(self, name: str, nbytes: int) -> DeviceBuffer:
        buf = self._buffers.get(name)
        if buf is None or buf.nbytes < nbytes:
            buf = self._buffers[name] = self.cuda.alloc(nbytes)
        return buf

    def set_shape(self, shape: tuple[int, ...]) -> bool:
        return bool(self.context.set_input_shape(self.io.input_name, shape))

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """Set the shape, upload x and bind both tensors; returns the host array the output will be copied into."""
        assert x.dtype == self.in_dtype, f"engine input is {self.in_dtype}, got {x.dtype}"
        assert self.set_shape(x.shape), f"shape {x.shape} rejected by the engine's profile"
        out_shape = tuple(self.context.get_tensor_shape(self.io.output_name))
        out = np.empty(out_shape, dtype=self.out_dtype)
        d_in = self._buffer(self.io.input_name, x.nbytes)
        d_out = self._buffer(self.io.output_name, out.nbytes)
        self.cuda.upload(d_in, x, self.stream)
        assert self.context.set_tensor_address(self.io.input_name, d_in.ptr)
        assert self.context.set_tensor_address(self.io.output_name, d_out.ptr)
        return out

    def enqueue(self) -> None:
        assert self.context.execute_async_v3(self.stream.handle), "execute_async_v3 failed (see TensorRT's log)"

    def fetch(self, out: np.ndarray) -> np.ndarray:
        self.cuda.download(out, self._buffers[self.io.output_name], self.stream)
        return out

    def run(self, x: np.ndarray) -> np.ndarray:
        out = self.prepare(x)
        self.enqueue()
        return self.fetch(out)


def make_input(rng: np.random.Generator, shape: tuple[int, int], dtype: np.dtype | type) -> np.ndarray:
    """Normal values spread over the interesting range, plus fixed extremes at the start of the first row."""
    x = (rng.standard_normal(shape) * 4.0).astype(dtype)
    edges = np.array([0.0, -0.0, 1.0, -1.0, 10.0, -10.0, 30.0, -30.0], dtype=dtype)
    n = min(edges.size, x.shape[1])
    x[0, :n] = edges[:n]
    return x


def assert_swish(model: configs.EngineModel, x: np.ndarray, out: np.ndarray) -> None:
    assert out.shape == x.shape and out.dtype == x.dtype
    if model.graph is configs.Graph.RELU:
        np.testing.assert_array_equal(out, np.maximum(x, 0))
    elif model.graph is configs.Graph.NATIVE:
        np.testing.assert_allclose(out.astype(np.float64), swish_ref(x), rtol=NATIVE_RTOL, atol=NATIVE_ATOL)
    else:
        dtype = "float16" if x.dtype == np.float16 else "float32"
        result = compare_to_ref(x, out, dtype)
        assert result.ok, f"{model.name}: {result.describe()}"


# --------------------------------------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("name", configs.ENGINE_MODEL_NAMES)
def test_engine_io_matches_config(engines: Engines, trt: Any, name: str) -> None:
    built = engines.get(name)
    engine = built.engine
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    assert names == [built.io.input_name, built.io.output_name]
    assert engine.get_tensor_mode(built.io.input_name) == trt.TensorIOMode.INPUT
    assert engine.num_optimization_profiles == 1
    lo, opt, hi = (tuple(d) for d in engine.get_tensor_profile_shape(built.io.input_name, 0))
    assert (lo, opt, hi) == ENGINE_PROFILE.shapes()
    expected = getattr(trt, configs.TRITON_TO_TRT_DTYPE[built.io.data_type])
    assert engine.get_tensor_dtype(built.io.input_name) == expected
    assert engine.get_tensor_dtype(built.io.output_name) == expected


@pytest.mark.parametrize("name", configs.ENGINE_MODEL_NAMES)
def test_outputs_match_reference(engines: Engines, cuda: Any, rng: np.random.Generator, name: str) -> None:
    built = engines.get(name)
    runner = Runner(built, cuda)
    x = make_input(rng, (8, 1024), runner.in_dtype)
    assert_swish(built.model, x, runner.run(x))


def test_plugin_native_and_relu_agree_where_they_should(engines: Engines, cuda: Any, rng: np.random.Generator) -> None:
    plugin, native, relu = (engines.get(n) for n in ("swish", "swish_native", "relu"))
    x = make_input(rng, (4, 4096), np.float32)
    y_plugin = Runner(plugin, cuda).run(x)
    y_native = Runner(native, cuda).run(x)
    y_relu = Runner(relu, cuda).run(x)
    np.testing.assert_allclose(y_plugin, y_native, rtol=NATIVE_RTOL, atol=NATIVE_ATOL)
    # Swish and ReLU meet for large |x| and differ near 0 (swish(-1) = -0.269, relu(-1) = 0).
    big = np.abs(x) > 20
    np.testing.assert_allclose(y_plugin[big], y_relu[big], atol=1e-6)
    assert not np.allclose(y_plugin[np.abs(x) < 2], y_relu[np.abs(x) < 2], atol=1e-3)


@pytest.mark.parametrize("shape", DYNAMIC_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", ["swish", "swish_fp16", "swish_native"])
def test_dynamic_shapes(
    engines: Engines, cuda: Any, rng: np.random.Generator, name: str, shape: tuple[int, int]
) -> None:
    built = engines.get(name)
    runner = Runner(built, cuda)
    # One context through every shape, the current one last: a context must follow shape changes.
    for s in [*DYNAMIC_SHAPES, shape]:
        x = make_input(rng, s, runner.in_dtype)
        out = runner.run(x)
        assert tuple(runner.context.get_tensor_shape(built.io.output_name)) == s
        assert_swish(built.model, x, out)


def test_profile_bounds_are_enforced(engines: Engines, cuda: Any) -> None:
    runner = Runner(engines.get("swish"), cuda)
    assert runner.set_shape((ENGINE_PROFILE.max_batch, ENGINE_PROFILE.max_length))
    assert not runner.set_shape((ENGINE_PROFILE.max_batch + 1, 16))
    assert not runner.set_shape((1, ENGINE_PROFILE.max_length + 1))


@pytest.mark.parametrize("name", ["swish", "swish_fp16"])
def test_serialize_deserialize_gives_identical_outputs(
    engines: Engines, cuda: Any, rng: np.random.Generator, name: str
) -> None:
    built = engines.get(name)
    plan = bytes(memoryview(built.engine.serialize()))
    again = engines.runtime.deserialize_cuda_engine(plan)
    assert again is not None, "the plugin did not deserialize (is its creator registered?)"
    x = make_input(rng, (8, 1024), Runner(built, cuda).in_dtype)
    first = Runner(built, cuda).run(x)
    second = Runner(built, cuda, engine=again).run(x)
    np.testing.assert_array_equal(first, second)
    assert_swish(built.model, x, second)


def test_contexts_in_threads(engines: Engines, cuda: Any) -> None:
    """Four threads, each with its own context, stream and buffers, on one engine, every output checked."""
    built = engines.get("swish")
    shapes = [*DYNAMIC_SHAPES, (ENGINE_PROFILE.max_batch, 4096)]
    errors: list[str] = []
    done = [0] * 4
    runners = [Runner(built, cuda) for _ in done]  # contexts are created up front, enqueued concurrently
    barrier = threading.Barrier(len(runners))

    def work(index: int) -> None:
        rng = np.random.default_rng(1000 + index)
        try:
            barrier.wait(timeout=60)
            for i in range(12):
                x = make_input(rng, shapes[(index + i) % len(shapes)], np.float32)
                out = runners[index].run(x)
                result = compare_to_ref(x, out, "float32")
                if not result.ok:
                    errors.append(f"thread {index} iteration {i} {x.shape}: {result.describe()}")
                done[index] += 1
        except Exception as e:  # noqa: BLE001 - reported below, with the thread it came from
            errors.append(f"thread {index}: {e!r}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(runners))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, "\n".join(errors)
    assert done == [12] * len(runners)


def test_latency_plugin_vs_relu_vs_native(
    engines: Engines, cuda: Any, rng: np.random.Generator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Prints the GPU time per enqueue of each engine at a small and at the largest shape; asserts only outputs."""
    rows = []
    for shape in [
        (ENGINE_PROFILE.opt_batch, ENGINE_PROFILE.opt_length),
        (ENGINE_PROFILE.max_batch, ENGINE_PROFILE.max_length),
    ]:
        for name in configs.ENGINE_MODEL_NAMES:
            if name not in engines.built:
                continue
            built = engines.built[name]
            runner = Runner(built, cuda)
            x = make_input(rng, shape, runner.in_dtype)
            out = runner.prepare(x)
            for _ in range(20):
                runner.enqueue()
            cuda.sync(runner.stream)
            iterations = 200
            start = time.perf_counter()
            for _ in range(iterations):
                runner.enqueue()
            cuda.sync(runner.stream)
            seconds = (time.perf_counter() - start) / iterations
            assert_swish(built.model, x, runner.fetch(out))
            gbps = 2 * x.nbytes / seconds / 1e9
            rows.append(f"{name:<13} {shape[0]:>4}x{shape[1]:<6} {seconds * 1e6:10.1f} us {gbps:8.1f} GB/s")
    with capsys.disabled():
        print(f"\nper-enqueue time, back-to-back enqueues on one stream ({cuda.name}):")
        print("\n".join(rows))
        built_in = ", ".join(f"{n} {b.build_seconds:.1f} s" for n, b in engines.built.items())
        print(f"build times: {built_in}")


# --------------------------------------------------------------------------------------------------------------------
# The builder's CLI on a TensorRT host: plans, records, staleness, --check


@pytest.fixture
def scratch_repository(tmp_path: Path) -> Iterator[Path]:
    repo = tmp_path / "model_repository"
    for name in configs.ENGINE_MODEL_NAMES:
        (repo / name / configs.MODEL_VERSION).mkdir(parents=True)
        shutil.copy(configs.DEFAULT_MODEL_REPOSITORY / name / "config.pbtxt", repo / name / "config.pbtxt")
    yield repo


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "build" / "build_engine.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_builder_cli_builds_once_then_checks(trt: Any, cuda: Any, scratch_repository: Path, tmp_path: Path) -> None:
    common = ["--model-repository", str(scratch_repository), "--cache-dir", str(tmp_path / "cache"), "relu"]
    first = _cli(*common)
    assert first.returncode == 0, first.stdout + first.stderr
    plan = records.plan_path(scratch_repository, "relu")
    record = records.read_record(plan)
    assert plan.is_file() and record is not None
    assert record["tensorrt_version"] == trt.__version__
    assert record["profile"] == configs.profile_record(ENGINE_PROFILE, "INPUT0")
    assert record["plan_bytes"] == plan.stat().st_size
    assert any((tmp_path / "cache").glob("timing-*.cache")), "no timing cache written"

    second = _cli(*common)
    assert second.returncode == 0 and "up to date" in second.stdout, second.stdout
    check = _cli("--check", *common)
    assert check.returncode == 0 and "relu: OK" in check.stdout, check.stdout

    record["gpu"] = {"name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0"}
    record["tensorrt_version"] = "10.0.1.6"
    records.record_path(plan).write_text(json.dumps(record))
    check = _cli("--check", *common)
    assert check.returncode == 1
    assert "relu: plan built for NVIDIA A100-SXM4-80GB (sm_80) with TensorRT 10.0.1; this host has" in check.stdout
    assert "rebuild with `make engines`" in check.stdout


def test_non_finite_beta_fails_that_model_in_one_line_and_builds_the_others(
    trt: Any, cuda: Any, scratch_repository: Path, tmp_path: Path
) -> None:
    config = scratch_repository / "swish_native" / "config.pbtxt"
    config.write_text(config.read_text().replace('string_value: "1.0"', 'string_value: "nan"'))
    done = _cli(
        "--model-repository", str(scratch_repository), "--cache-dir", str(tmp_path / "cache"), "swish_native", "relu"
    )
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("[1/2] swish_native:")]
    assert "beta must be finite" in line
    assert records.plan_path(scratch_repository, "relu").is_file(), "the other model was not built"


def test_a_beta_change_makes_plugin_and_native_plans_stale_together(
    trt: Any, cuda: Any, scratch_repository: Path, tmp_path: Path
) -> None:
    if not plugin.plugin_lib_path().is_file():
        pytest.skip(f"plugin library not found at {plugin.plugin_lib_path()} (make plugin, or set SWISH_PLUGIN_LIB)")
    common = ["--model-repository", str(scratch_repository), "--cache-dir", str(tmp_path / "cache")]
    built = _cli(*common, "swish", "swish_native")
    assert built.returncode == 0, built.stdout + built.stderr
    for name in ("swish", "swish_native"):
        config = scratch_repository / name / "config.pbtxt"
        config.write_text(config.read_text().replace('string_value: "1.0"', 'string_value: "1.5"'))
    check = _cli("--check", *common, "swish", "swish_native")
    assert check.returncode == 1
    lines = check.stdout.splitlines()
    assert len(lines) == 2 and all("beta 1.0 -> 1.5" in line for line in lines), check.stdout
    rebuilt = _cli(*common, "swish", "swish_native")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    for name in ("swish", "swish_native"):
        record = records.read_record(records.plan_path(scratch_repository, name))
        assert record is not None and record["beta"] == 1.5
