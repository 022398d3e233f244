"""Model Analyzer's configuration (bench/model_analyzer.yaml) names served TensorRT models within the engine profile."""

from __future__ import annotations

from tests.support import REPO


def test_model_analyzer_config_names_real_models_within_the_engine_profile() -> None:
    import yaml

    from swish_triton.limits import ENGINE_PROFILE
    from swish_triton.model_config import read_model_config

    config = yaml.safe_load((REPO / "bench" / "model_analyzer.yaml").read_text())
    assert config["profile_models"]
    for name, spec in config["profile_models"].items():
        model = read_model_config(REPO / "model_repository" / name)
        assert model.platform == "tensorrt_plan"
        assert max(spec["model_config_parameters"]["max_batch_size"]) <= ENGINE_PROFILE.max_batch
    assert config["perf_analyzer_flags"]["shape"].startswith(f"{model.input[0].name}:")
    assert config["triton_server_environment"]["LD_PRELOAD"].endswith("libswish.so")
