"""Static checks of the TensorRT side that run anywhere (CI has no GPU and no TensorRT).

- every config.pbtxt parses strictly against Triton's schema (model_config_pb2);
- the TensorRT models' configs agree with the builder's table and limits.ENGINE_PROFILE;
- the builder's plugin identity agrees with swish_triton/swish_plugin.json;
- the builder's record/staleness logic and its one-line mismatch message;
- mypy of the builder against tensorrt-stubs (skipped with the reason when mypy or the stubs are not installed).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from swish_triton.engines import configs, host, networks, plugin, profiling, records, repository
from swish_triton.limits import ENGINE_PROFILE, MAX_BATCH_SIZE
from swish_triton.plugin_spec import SPEC_PATH, load_plugin_spec
from tests.support import REPO

MODEL_REPOSITORY = REPO / "model_repository"
CONFIGS = sorted(MODEL_REPOSITORY.glob("*/config.pbtxt"))
TYPED_FILES = [
    "swish_triton/engines/",
    "build/build_engine.py",
    "build/trt_stubs.py",
]

H100 = host.GpuInfo("NVIDIA H100 80GB HBM3", "9.0")
A100 = host.GpuInfo("NVIDIA A100-SXM4-80GB", "8.0")


def parse(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


# --------------------------------------------------------------------------------------------------------------------
# Configs against Triton's schema, the builder's table and the limits


def test_model_repository_has_configs() -> None:
    assert {p.parent.name for p in CONFIGS} >= set(configs.ENGINE_MODEL_NAMES)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name)
def test_config_parses_strictly(path: Path) -> None:
    cfg = parse(path)
    assert cfg.name == path.parent.name


def test_strict_parsing_rejects_unknown_fields() -> None:
    with pytest.raises(text_format.ParseError):
        text_format.Parse('name: "x"\nmax_batch_sise: 4\n', model_config_pb2.ModelConfig())


def test_every_tensorrt_model_is_in_the_builders_table() -> None:
    plan_models = {p.parent.name for p in CONFIGS if parse(p).platform == "tensorrt_plan"}
    assert plan_models == set(configs.ENGINE_MODEL_NAMES)


def test_profile_is_consistent() -> None:
    p = ENGINE_PROFILE
    assert 1 <= p.min_batch <= p.opt_batch <= p.max_batch == MAX_BATCH_SIZE
    assert 1 <= p.min_length <= p.opt_length <= p.max_length


@pytest.mark.parametrize("model", configs.ENGINE_MODELS, ids=lambda m: m.name)
def test_tensorrt_config(model: configs.EngineModel) -> None:
    cfg = parse(MODEL_REPOSITORY / model.name / "config.pbtxt")
    io = configs.model_io(model, MODEL_REPOSITORY)  # validates name, platform, I/O count, dims, dtype, max batch
    assert cfg.platform == "tensorrt_plan"
    assert cfg.max_batch_size == ENGINE_PROFILE.max_batch == io.max_batch_size
    assert io.data_type == model.data_type

    assert cfg.HasField("dynamic_batching")
    assert 0 < cfg.dynamic_batching.max_queue_delay_microseconds <= 1000
    for size in cfg.dynamic_batching.preferred_batch_size:
        assert 1 <= size <= cfg.max_batch_size

    assert [(g.kind, g.count) for g in cfg.instance_group] == [(model_config_pb2.ModelInstanceGroup.KIND_GPU, 2)]

    assert cfg.model_warmup, "no model_warmup"
    for warmup in cfg.model_warmup:
        assert ENGINE_PROFILE.min_batch <= warmup.batch_size <= ENGINE_PROFILE.max_batch
        assert set(warmup.inputs) == {io.input_name}
        spec = warmup.inputs[io.input_name]
        assert model_config_pb2.DataType.Name(spec.data_type) == io.data_type
        assert len(spec.dims) == 1 and ENGINE_PROFILE.min_length <= spec.dims[0] <= ENGINE_PROFILE.max_length
        assert spec.random_data

    # CUDA graphs are documented but off; when switched on, every graph must fit the profile.
    for graph in cfg.optimization.cuda.graph_spec:
        assert 1 <= graph.batch_size <= ENGINE_PROFILE.max_batch
        assert set(graph.input) <= {io.input_name}

    version_dir = MODEL_REPOSITORY / model.name / configs.MODEL_VERSION
    assert (version_dir / ".gitkeep").is_file(), f"{version_dir} must be kept in git by a .gitkeep"


def test_commented_cuda_graph_option_parses() -> None:
    """The config's commented-out CUDA graph block must be valid once uncommented, with shapes inside the profile."""
    text = (MODEL_REPOSITORY / "swish" / "config.pbtxt").read_text()
    start = text.index("# optimization {")
    block = "\n".join(line.removeprefix("# ") for line in text[start:].splitlines() if line.startswith("# "))
    cfg = parse_text(text + "\n" + block)
    assert cfg.optimization.cuda.graphs
    for graph in cfg.optimization.cuda.graph_spec:
        assert 1 <= graph.batch_size <= ENGINE_PROFILE.max_batch
        for shape in graph.input.values():
            assert all(ENGINE_PROFILE.min_length <= d <= ENGINE_PROFILE.max_length for d in shape.dim)


def parse_text(text: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def test_tensorrt_models_share_io_names() -> None:
    """Clients switch models by name only: every engine takes the same input and output names."""
    ios = {
        (io.input_name, io.output_name) for io in (configs.model_io(m, MODEL_REPOSITORY) for m in configs.ENGINE_MODELS)
    }
    assert len(ios) == 1


def test_model_io_reports_mismatches(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "relu").mkdir(parents=True)
    text = (MODEL_REPOSITORY / "relu" / "config.pbtxt").read_text()
    (repo / "relu" / "config.pbtxt").write_text(text.replace("max_batch_size: 64", "max_batch_size: 128"))
    relu = next(m for m in configs.ENGINE_MODELS if m.name == "relu")
    with pytest.raises(configs.BuildError, match="max_batch_size is 128"):
        configs.model_io(relu, repo)
    (repo / "relu" / "config.pbtxt").write_text(text.replace("TYPE_FP32", "TYPE_FP16"))
    with pytest.raises(configs.BuildError, match="builder's table says TYPE_FP32"):
        configs.model_io(relu, repo)


# --------------------------------------------------------------------------------------------------------------------
# Plugin identity


def test_plugin_identity_matches_spec_file(tmp_path: Path) -> None:
    raw = json.loads(SPEC_PATH.read_text())
    spec = load_plugin_spec()
    assert (spec.name, spec.version_v3, spec.version_v2) == ("SwishPlugin", "2", "1")
    assert (raw["name"], raw["versions"]["v3"], raw["versions"]["v2"]) == (spec.name, spec.version_v3, spec.version_v2)
    assert plugin.plugin_fields(spec, None) == {f["name"]: float(f["default"]) for f in raw["fields"]}
    assert all(f["type"] == "float32" for f in raw["fields"]), "the builder passes every field as FLOAT32"
    assert plugin.plugin_fields(spec, 2.0) == {"beta": 2.0}
    lib = tmp_path / "libswish.so"
    lib.write_bytes(b"not really a library")
    rec = plugin.plugin_record(spec, lib, {"beta": 1.0})
    assert (rec["name"], rec["interface"], rec["version"]) == ("SwishPlugin", "IPluginV3", "2")
    assert rec["sha256"] == plugin.sha256_file(lib)


def test_tensorrt_before_10_is_refused_in_one_line() -> None:
    host.require_supported_tensorrt("10.13.3.9")
    host.require_supported_tensorrt("11.1.0")
    with pytest.raises(configs.BuildError, match=r"^TensorRT 8.6.1 is not supported: the engines need TensorRT 10"):
        host.require_supported_tensorrt("8.6.1")


# --------------------------------------------------------------------------------------------------------------------
# Records, staleness and the mismatch line


def _fresh(tmp_path: Path, model_name: str = "swish") -> tuple[configs.EngineModel, records.Expected, dict, Path]:
    model = next(m for m in configs.ENGINE_MODELS if m.name == model_name)
    lib = tmp_path / "libswish.so"
    lib.write_bytes(b"v1")
    io = configs.model_io(model, MODEL_REPOSITORY)
    expected = records.expected_for(model, io, host.HostInfo(H100, "10.13.3.9"), lib)
    record = json.loads(json.dumps(records.make_record(model, b"plan", expected, 1.5)))  # as read back from disk
    return model, expected, record, lib


def test_record_contents(tmp_path: Path) -> None:
    _, _, record, lib = _fresh(tmp_path)
    assert record["tensorrt_version"] == "10.13.3.9"
    assert record["gpu"] == {"name": H100.name, "compute_capability": "9.0"}
    assert record["profile"] == {"input": "INPUT0", "min": [1, 1], "opt": [16, 1024], "max": [64, 65536]}
    assert record["plugin"]["sha256"] == plugin.sha256_file(lib)
    assert record["plugin"]["version"] == "2"
    assert record["builder_version"] == records.BUILDER_VERSION
    assert record["built_at"].endswith("+00:00")
    assert record["beta"] == 1.0 and record["plugin"]["fields"] == {"beta": 1.0}


def test_fresh_record_is_not_stale(tmp_path: Path) -> None:
    _, expected, record, _ = _fresh(tmp_path)
    assert records.stale_reasons(record, True, expected) == []


def test_staleness_reasons(tmp_path: Path) -> None:
    model, expected, record, lib = _fresh(tmp_path)
    assert records.stale_reasons(record, False, expected) == ["no plan"]
    assert records.stale_reasons(None, True, expected) == ["no build record beside the plan"]

    def reasons_after(**changes: object) -> list[str]:
        return records.stale_reasons({**record, **changes}, True, expected)

    assert any("TensorRT" in r for r in reasons_after(tensorrt_version="11.1.0.106"))
    assert reasons_after(tensorrt_version="10.13.3") == [], "the build number alone does not make a plan stale"
    assert any("GPU" in r for r in reasons_after(gpu={"name": A100.name, "compute_capability": "8.0"}))
    assert any("profile" in r for r in reasons_after(profile={**record["profile"], "max": [32, 65536]}))
    assert any("config I/O" in r for r in reasons_after(io={**record["io"], "input": "x"}))
    assert any("builder version" in r for r in reasons_after(builder_version=0))
    assert any("fields" in r for r in reasons_after(plugin={**record["plugin"], "fields": {"beta": 2.0}}))
    assert reasons_after(beta=2.0) == ["beta 2.0 -> 1.0 (config.pbtxt)"]
    lib.write_bytes(b"v2")
    io = configs.model_io(model, MODEL_REPOSITORY)
    rebuilt_lib = records.expected_for(model, io, host.HostInfo(H100, "10.13.3.9"), lib)
    assert any("libswish.so changed" in r for r in records.stale_reasons(record, True, rebuilt_lib))


def test_unknown_host_facts_are_not_held_against_a_plan(tmp_path: Path) -> None:
    model, _, record, lib = _fresh(tmp_path)
    io = configs.model_io(model, MODEL_REPOSITORY)
    no_gpu_no_trt = records.expected_for(model, io, host.HostInfo(None, None), lib)
    assert records.stale_reasons(record, True, no_gpu_no_trt) == []
    assert records.host_mismatch("swish", record, host.HostInfo(None, None)) is None


def test_host_mismatch_line(tmp_path: Path) -> None:
    _, _, record, _ = _fresh(tmp_path)
    record["gpu"] = {"name": "NVIDIA A100", "compute_capability": "8.0"}
    line = records.host_mismatch("swish", record, host.HostInfo(host.GpuInfo("NVIDIA H100", "9.0"), "11.1.0.106"))
    assert line == (
        "swish: plan built for NVIDIA A100 (sm_80) with TensorRT 10.13.3; "
        "this host has NVIDIA H100 (sm_90) with TensorRT 11.1.0: rebuild with `make engines`"
    )
    assert "\n" not in line
    same = host.HostInfo(host.GpuInfo("NVIDIA A100", "8.0"), "10.13.3.9")
    assert records.host_mismatch("swish", record, same) is None


def test_check_reports_each_model_in_one_line(tmp_path: Path) -> None:
    """--check without plans (this machine): one line a model, exit status 1."""
    repo = tmp_path / "repo"
    for name in configs.ENGINE_MODEL_NAMES:
        (repo / name / "1").mkdir(parents=True)
        (repo / name / "config.pbtxt").write_text((MODEL_REPOSITORY / name / "config.pbtxt").read_text())
    done = subprocess.run(
        [sys.executable, str(REPO / "build" / "build_engine.py"), "--check", "--model-repository", str(repo)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == list(configs.ENGINE_MODEL_NAMES)
    assert all("no plan" in line and "make engines" in line for line in lines)

    # A plan whose record says another GPU and TensorRT: the one-line mismatch, whatever this host has.
    plan = records.plan_path(repo, "relu")
    plan.write_bytes(b"plan")
    model = next(m for m in configs.ENGINE_MODELS if m.name == "relu")
    expected = records.expected_for(
        model, configs.model_io(model, repo), host.HostInfo(A100, "8.6.1"), tmp_path / "none.so"
    )
    records.record_path(plan).write_text(json.dumps(records.make_record(model, b"plan", expected, 1.0)))
    here = host.HostInfo(H100, "10.13.3.9")
    (outcome,) = repository.check_models(repo, [model], here, tmp_path / "none.so")
    assert outcome.status == "stale"
    assert outcome.message.startswith("relu: plan built for NVIDIA A100-SXM4-80GB (sm_80) with TensorRT 8.6.1; ")


def test_build_without_tensorrt_fails_in_one_clear_line() -> None:
    if host.tensorrt_available():
        pytest.skip("TensorRT is installed here: this test is for hosts without it")
    done = subprocess.run(
        [sys.executable, "-m", "swish_triton.engines.builder", "relu"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "TensorRT" in done.stderr and done.stderr.count("\n") == 1


# --------------------------------------------------------------------------------------------------------------------
# Host detection helpers (pure parts)


def test_parse_nvidia_smi() -> None:
    assert host.parse_nvidia_smi_gpu("NVIDIA H100 80GB HBM3, 9.0\n") == H100
    assert host.parse_nvidia_smi_gpu("NVIDIA GeForce RTX 4090, 8.9") == host.GpuInfo("NVIDIA GeForce RTX 4090", "8.9")
    assert host.parse_nvidia_smi_gpu("") is None
    assert host.parse_nvidia_smi_gpu("No devices were found") is None
    # nvidia-smi lists GPUs in PCI order, CUDA device 0 need not be its first: only one model throughout is certain.
    assert host.parse_nvidia_smi_gpu("NVIDIA H100 80GB HBM3, 9.0\nNVIDIA H100 80GB HBM3, 9.0\n") == H100
    assert host.parse_nvidia_smi_gpu("NVIDIA A100-SXM4-80GB, 8.0\nNVIDIA H100 80GB HBM3, 9.0\n") is None
    assert H100.sm == "sm_90"


def test_tensorrt_version_decoding() -> None:
    assert host.tensorrt_version_from_int(101303) == "10.13.3"
    assert host.tensorrt_version_from_int(110100) == "11.1.0"
    assert host.same_tensorrt_release("10.13.3.9", "10.13.3")
    assert not host.same_tensorrt_release("10.13.3.9", "10.14.1.48")


def test_timing_cache_is_per_release_and_architecture(tmp_path: Path) -> None:
    assert networks.timing_cache_path(tmp_path, "10.13.3.9", H100).name == "timing-trt10.13.3-sm_90.cache"
    assert networks.timing_cache_path(tmp_path, "10.13.3.9", A100) != networks.timing_cache_path(
        tmp_path, "10.13.3.9", H100
    )
    assert not networks.timing_cache_path(tmp_path, "x", H100).is_relative_to(MODEL_REPOSITORY)


# --------------------------------------------------------------------------------------------------------------------
# Profiling recipes


def test_profiling_recipes_match_engines() -> None:
    recipes = profiling.recipes("swish")
    tools = [r.tool for r in recipes]
    assert tools[:3] == ["trtexec", "nsys", "ncu"]
    plan = str(records.plan_path(configs.DEFAULT_MODEL_REPOSITORY, "swish"))
    shape = f"--shapes=INPUT0:{ENGINE_PROFILE.opt_batch}x{ENGINE_PROFILE.opt_length}"
    for r in recipes[:3]:
        assert f"--loadEngine={plan}" in r.argv and shape in r.argv
        assert any(a.startswith("--staticPlugins=") for a in r.argv)
    relu = next(r for r in recipes if r.name == "trtexec-relu")
    assert not any(a.startswith("--staticPlugins=") for a in relu.argv)
    with pytest.raises(configs.BuildError, match="outside the engine profile"):
        profiling.recipes("swish", shape=(ENGINE_PROFILE.max_batch + 1, 16))


def test_profiling_cli_prints_commands() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "swish_triton.engines.profiling", "--model", "swish_fp16", "--shape", "8x4096"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert "NVTX" not in done.stdout, "the plugin has no NVTX build option; the recipes must not advertise one"
    assert "--shapes=INPUT0:8x4096" in done.stdout
    assert "nsys profile" in done.stdout and "ncu " in done.stdout


# --------------------------------------------------------------------------------------------------------------------
# mypy against tensorrt-stubs


def test_mypy_against_tensorrt_stubs(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install mypy)")
    sys.path.insert(0, str(REPO / "build"))
    try:
        import trt_stubs
    finally:
        sys.path.remove(str(REPO / "build"))
    try:
        trt_stubs.write_stubs()
    except LookupError as e:
        pytest.skip(f"tensorrt-stubs is not installed: {e}")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "build/mypy.ini", "--cache-dir", str(tmp_path), *TYPED_FILES],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr
