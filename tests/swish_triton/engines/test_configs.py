"""The engine builder's model table (swish_triton.engines.configs) against the model repository: every config.pbtxt
parses strictly against Triton's schema (model_config_pb2), and the TensorRT models' configs agree with the builder's
table and limits.ENGINE_PROFILE. Runs anywhere (no GPU, no TensorRT).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from swish_triton.engines import configs
from swish_triton.limits import ENGINE_PROFILE
from tests.support import MODEL_REPOSITORY

CONFIGS = sorted(MODEL_REPOSITORY.glob("*/config.pbtxt"))


def parse(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


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
