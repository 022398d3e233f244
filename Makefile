# The single entry point. `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bootstrap-stamp
PYTEST_ARGS ?=
SERVE_ARGS ?=

.PHONY: help venv demo test lint format serve validate plugin plugin-ci plugin-gpu-check bench-kernels engines engines-check profile bench compose-up compose-down compose-up-cpu compose-down-cpu helm-check deploy-check test-docker clean

help:
	@echo "make demo      serve the Swish models with the embedded Triton, validate them over HTTP and gRPC, sweep c=1..8 (.demo/)"
	@echo "make test      run the test suite (real tritonserver; GPU/TensorRT/Docker tests skip where absent)"
	@echo "make lint      ruff check + format check, hadolint (Dockerfile), shellcheck (scripts), mypy of the engine builder against tensorrt-stubs"
	@echo "make engines   build the TensorRT plans (TensorRT host: ENGINE_PYTHON is the Python that has tensorrt)"
	@echo "make compose-up  docker compose up --build -d (GPU host; see docker/README.md)"
	@echo "make compose-up-cpu  the same deployment without a GPU (compose.cpu.yaml: the Python-backend models)"
	@echo "make serve     serve model_repository on 127.0.0.1:8000 (HTTP) / 8001 (gRPC) / 8002 (metrics) until Ctrl-C"
	@echo "make validate  validate swish_py and swish_py_fp16 of a running server over HTTP and gRPC (URLs: README's environment table)"
	@echo "make plugin    build libswish.so / libswish_kernels.so into .build/plugin (plugin/README.md)"
	@echo "make bench     serving benchmark: Swish vs identity, batching, instances, protocols (results/)"
	@echo "make profile   print the nsys/ncu/trtexec commands for the swish engine (PROFILE_ARGS=--run runs them)"
	@echo "make helm-check  lint, render and schema-validate the Helm chart (deploy/helm/swish-triton)"

$(STAMP): pyproject.toml scripts/bootstrap.sh
	PYTHON=$(PYTHON) scripts/bootstrap.sh $(VENV)
	@touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m swish_triton.demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/hadolint docker/Dockerfile
	$(VENV)/bin/shellcheck scripts/*.sh docker/*.sh bench/*.sh plugin/*.sh plugin/tools/*.sh deploy/helm/swish-triton/files/*.sh .ci/run
	$(PY) build/trt_stubs.py
	$(PY) -m mypy --config-file build/mypy.ini swish_triton/engines/ build/build_engine.py build/trt_stubs.py

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

serve: $(STAMP)
	$(PY) -m swish_triton.serving --model-repository model_repository $(SERVE_ARGS)

# URLs from the environment (TRITON_HTTP_URL/TRITON_GRPC_URL, TRITON_URL, SWISH_TRITON_HOST, SWISH_HTTP_PORT/SWISH_GRPC_PORT).
validate: $(STAMP)
	$(PY) client/validate.py -i http -m swish_py -m swish_py_fp16
	$(PY) client/validate.py -i grpc -m swish_py -m swish_py_fp16

# libswish.so (+ libswish_dynamic.so, libswish_kernels.so) into .build/plugin: the plugin part needs TensorRT's headers
# and libnvinfer (TENSORRT_ROOT=...; see plugin/README.md); without them only libswish_kernels.so is built.
PLUGIN_CMAKE_ARGS ?=
plugin:
	cmake -S plugin -B .build/plugin -DCMAKE_BUILD_TYPE=Release $(PLUGIN_CMAKE_ARGS)
	cmake --build .build/plugin -j

# What CI runs for the plugin: nvcc compile of the kernels and C ABI; the TensorRT part where headers are present.
plugin-ci:
	plugin/ci_build.sh

# On a GPU host: conformance driver (TensorRT 10.16 and 11.1 headers), the plugin in TensorRT's lean runtime
# (10.16.1, 11.4) with enqueue, C ABI and pytest GPU tests, sanitizers, kernel benchmark (plugin/tools/gpu_check.sh).
plugin-gpu-check:
	plugin/tools/gpu_check.sh

bench-kernels: $(STAMP)
	$(PY) bench/bench_kernels.py

# TensorRT lives in the TensorRT host's (container's) Python, not in .venv.
ENGINE_PYTHON ?= python3
engines:
	PYTHONPATH=$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH} $(ENGINE_PYTHON) -m swish_triton.engines.builder $(ENGINE_ARGS)

engines-check:
	PYTHONPATH=$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH} $(ENGINE_PYTHON) -m swish_triton.engines.builder --check

profile:
	PYTHONPATH=$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH} $(ENGINE_PYTHON) -m swish_triton.engines.profiling $(PROFILE_ARGS)

bench: $(STAMP)
	$(PY) bench/serving_bench.py

# Docker deployment (GPU host with Docker and the NVIDIA Container Toolkit; SWISH_API_KEY in .env).
compose-up:
	docker compose up --build -d

compose-down:
	docker compose down

# Without a GPU: the server image serving the Python-backend models (docker/README.md, "Without a GPU").
compose-up-cpu:
	docker compose -f compose.yaml -f compose.cpu.yaml up --build --wait

compose-down-cpu:
	docker compose -f compose.yaml -f compose.cpu.yaml down -v

helm-check: $(STAMP)
	$(PY) -m pytest tests/deploy/test_helm_chart.py

deploy-check: $(STAMP)
	$(PY) -m pytest tests/deploy/test_linters.py tests/deploy/test_compose.py tests/deploy/test_dockerfile.py \
		tests/deploy/test_entrypoints.py

test-docker: $(STAMP)
	$(PY) -m pytest -m docker -s tests/deploy/test_docker_e2e.py

# `make test` on Debian 13 (Python 3.13, NumPy 2, PyPI perf-analyzer), root file system made with debootstrap, in a
# container of a private Docker engine started and stopped by the script (root; scripts/test_debian13.sh). CI runs it.
.PHONY: test-debian13
test-debian13:
	scripts/test_debian13.sh

clean:
	rm -rf .demo .pytest_cache .ruff_cache .mypy_cache
