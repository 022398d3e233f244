#!/usr/bin/env bash
# Everything the Swish plugin needs a GPU for, in one run (`make plugin-gpu-check`; run on an H100 and an H200, works
# on any CUDA machine with nvcc, cmake and PyTorch):
#   1. builds (sm_90 unless SWISH_CUDA_ARCH says otherwise) against the TensorRT 10.16 and 11.1 headers, each with
#      swish_trt_runtime_test linked against the TensorRT lean runtime of that major;
#   2. the conformance driver (both header sets) and the C ABI test;
#   3. the plugin inside TensorRT's runtime: swish_trt_runtime_test --gpu, both majors: the loadable library alone
#      (no libnvinfer anywhere), then both libraries (libswish.so through a libnvinfer.so.<major> symlink to the lean
#      library: the lean runtime ships no libnvinfer.so);
#   4. compute-sanitizer memcheck / racecheck on the C ABI test and the conformance driver;
#   5. the GPU pytest module (tests/gpu/test_kernels_library.py; its worst errors, per dtype and per beta over all
#      FP16/BF16 bit patterns, go to max_errors.txt and the summary);
#   6. the kernel benchmark (bench/bench_kernels.py: linear sizes and the vectorized formats).
# Logs go to $OUT (default /tmp/swish-gpu-check); a summary is printed last. Exit status: number of failed steps.
#
#   SWISH_TENSORRT_HEADERS=<dir holding 10.16/include and 11.1/include>   (default ../shared/third_party/tensorrt-include)
#   SWISH_TENSORRT_LEAN_CACHE=<cache of scripts/fetch_tensorrt_lean.py>   (fetched there if missing and online)
#   OUT=/tmp/check plugin/tools/gpu_check.sh
#
# tests/conftest.py is not loaded (--noconftest): it imports the serving stack (tritonclient), which a bare GPU
# machine lacks; the GPU tests need none of its fixtures.
#
# Functions below run through step(), which shellcheck cannot follow:
# shellcheck disable=SC2317
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo" || exit 1
out=${OUT:-/tmp/swish-gpu-check}
mkdir -p "$out"
summary=$out/summary.txt
: >"$summary"
failures=0
arch=${SWISH_CUDA_ARCH:-90-real}
jobs=$(nproc)
headers_root=${SWISH_TENSORRT_HEADERS:-$repo/../shared/third_party/tensorrt-include}
declare -A lean_version=([10.16]=10.16.1.11 [11.1]=11.4.0.106)

record() { printf '%-62s %s\n' "$1" "$2" | tee -a "$summary"; }

# step NAME LOG COMMAND...: runs COMMAND, appends its output to LOG, records PASS/FAIL.
step() {
    local name=$1 log=$2
    shift 2
    echo "=== ${name}: $*" >>"$log"
    local start=$SECONDS
    if "$@" >>"$log" 2>&1; then
        record "$name" "PASS ($((SECONDS - start)) s)"
    else
        record "$name" "FAIL rc=$? ($((SECONDS - start)) s), see $(basename "$log")"
        failures=$((failures + 1))
    fi
}

{
    echo "host: $(hostname), $(nproc) cores"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
    for tool in nvcc cmake ninja compute-sanitizer python3; do
        printf '%-18s %s\n' "$tool" "$(command -v "$tool" || echo MISSING)"
    done
    nvcc --version | tail -1
    python3 -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__)'
} 2>&1 | tee -a "$summary"

if ! python3 -c 'import pytest, pytest_timeout' 2>/dev/null && [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl &&
        export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
build=$out/build.log
lean_lib() { # lean_lib HEADER-VERSION: path of libnvinfer_lean.so.<major>, fetched if missing (needs the network)
    python3 scripts/fetch_tensorrt_lean.py --no-bindings "${lean_version[$1]}" 2>>"$build" | tail -n 1
}
# shellcheck disable=SC2329 # called through step()
configure() { # configure DIR ARGS...
    local dir=$1
    shift
    cmake -S plugin -B "$dir" "${generator[@]}" -DCMAKE_CUDA_ARCHITECTURES="$arch" -DSWISH_WERROR=ON "$@" &&
        cmake --build "$dir" -j "$jobs"
}
for v in 10.16 11.1; do
    step "build: plugin + tests + TensorRT runtime test, $v headers" "$build" configure ".build/gpu/plugin-trt$v" \
        -DTENSORRT_INCLUDE_DIR="$headers_root/$v/include" -DSWISH_NVINFER_STUB=ON -DSWISH_BUILD_PLUGIN=ON \
        -DSWISH_BUILD_TESTS=ON -DSWISH_TENSORRT_LEAN_LIB="$(lean_lib $v)"
done
b10=.build/gpu/plugin-trt10.16
b11=.build/gpu/plugin-trt11.1

conf=$out/conformance.log
for v in 10.16 11.1; do
    step "conformance driver, TensorRT $v headers" "$conf" ".build/gpu/plugin-trt$v/swish_conformance" --require-gpu
done
step "C ABI test" "$conf" "$b11/swish_capi_test"
grep -E "passed|FAIL" "$conf" | tee -a "$summary"

trt=$out/tensorrt_runtime.log
symlinks=$(mktemp -d)
for v in 10.16 11.1; do
    dir=.build/gpu/plugin-trt$v
    lean=$(lean_lib $v)
    major=${v%%.*}
    step "TensorRT $major runtime: loadable library alone (GPU)" "$trt" env -u LD_LIBRARY_PATH \
        "$dir/swish_trt_runtime_test" --gpu --loadable "$repo/$dir/libswish_dynamic.so"
    # libswish.so needs libnvinfer.so.<major>, which a lean-only TensorRT does not ship: a symlink to the lean library.
    ln -sf "$lean" "$symlinks/libnvinfer.so.$major"
    step "TensorRT $major runtime: both libraries (GPU)" "$trt" env LD_LIBRARY_PATH="$symlinks" \
        "$dir/swish_trt_runtime_test" --gpu --loadable "$repo/$dir/libswish_dynamic.so" --static "$repo/$dir/libswish.so"
done
rm -rf "$symlinks"
grep -E "^(TensorRT|GPU|ROUTE|FAIL|lib)" "$trt" | sort -u | tee -a "$summary"

san=$out/sanitizer.log
# shellcheck disable=SC2329 # called through step()
sanitize() { timeout 200 compute-sanitizer --error-exitcode 1 "$@"; }
step "compute-sanitizer memcheck: C ABI test" "$san" sanitize --tool memcheck --leak-check full "$b11/swish_capi_test"
step "compute-sanitizer racecheck: C ABI test" "$san" sanitize --tool racecheck "$b11/swish_capi_test"
step "compute-sanitizer memcheck: conformance 11.1" "$san" sanitize --tool memcheck --leak-check full \
    "$b11/swish_conformance" --require-gpu
step "compute-sanitizer memcheck: conformance 10.16" "$san" sanitize --tool memcheck "$b10/swish_conformance" \
    --require-gpu
grep -E "ERROR SUMMARY|RACECHECK SUMMARY|LEAK SUMMARY" "$san" | tee -a "$summary"

py=$out/pytest.log
export SWISH_KERNELS_LIB=$repo/$b11/libswish_kernels.so
step "pytest tests/gpu/test_kernels_library.py" "$py" env PYTHONUNBUFFERED=1 SWISH_GPU_TEST_REPORT="$out/max_errors.txt" \
    python3 -m pytest tests/gpu/test_kernels_library.py -q -p no:cacheprovider -rs --durations=5 --noconftest
cat "$out/max_errors.txt" 2>/dev/null | tee -a "$summary"
tail -n 1 "$py" | tee -a "$summary"

bench=$out/bench.md
# shellcheck disable=SC2086 # SWISH_BENCH_ARGS holds several arguments
step "benchmark: linear sizes and vectorized formats" "$bench" python3 bench/bench_kernels.py \
    --csv "$out/kernels.csv" --lib "$SWISH_KERNELS_LIB" ${SWISH_BENCH_ARGS:-} # word-split on purpose

echo
echo "================ summary ================"
cat "$summary"
echo
grep -E "^\||^NVIDIA|^[A-Z].*SMs" "$bench"
echo "failed steps: $failures"
exit "$failures"
