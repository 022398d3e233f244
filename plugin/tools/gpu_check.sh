#!/usr/bin/env bash
# Everything the Swish plugin needs a GPU for, in one run (run on an H100; works on any CUDA machine):
# builds (sm_90 only, to save time), the conformance driver against the TensorRT 10.16 and 11.1 headers, the C ABI
# test, compute-sanitizer (memcheck, racecheck) on both, the GPU pytest module, the benchmark (two store variants),
# and the SASS / an ncu profile of the kernel. Logs go to $OUT (default /tmp/swish-gpu-check); a summary is printed
# last. Exit status: number of failed steps (0 = all passed).
#
#   OUT=/tmp/check plugin/tools/gpu_check.sh            # needs third_party/tensorrt-{10.16,11.1}/include
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

record() { printf '%-58s %s\n' "$1" "$2" | tee -a "$summary"; }

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
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader
    for tool in nvcc cmake ninja compute-sanitizer ncu cuobjdump python3; do
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
# shellcheck disable=SC2329 # called through step()
configure() { # configure DIR ARGS...
    local dir=$1
    shift
    cmake -S plugin -B "$dir" "${generator[@]}" -DCMAKE_CUDA_ARCHITECTURES="$arch" "$@" && cmake --build "$dir" -j "$jobs"
}
step "build: kernels + plugin + tests, TensorRT 10.16 headers" "$build" configure .build \
    -DTENSORRT_INCLUDE_DIR="$repo/third_party/tensorrt-10.16/include" -DSWISH_NVINFER_STUB=ON -DSWISH_BUILD_TESTS=ON
step "build: plugin + tests, TensorRT 11.1 headers" "$build" configure .build/trt11 \
    -DTENSORRT_INCLUDE_DIR="$repo/third_party/tensorrt-11.1/include" -DSWISH_NVINFER_STUB=ON -DSWISH_BUILD_TESTS=ON
# Kernel variants for the benchmark only, as name:nvcc-defines (comma-separated); the tests run on the default build.
# SWISH_VARIANTS overrides the list (space-separated entries; "" for none).
default_variants="one-wave-persistent:-DSWISH_WAVES=1 streaming-stores:-DSWISH_STREAMING_STORES=1"
read -r -a variants <<<"${SWISH_VARIANTS-$default_variants}"
for variant in "${variants[@]}"; do
    flags=${variant#*:}
    step "build: kernels only, variant ${variant%%:*}" "$build" configure ".build/variant-${variant%%:*}" \
        -DSWISH_BUILD_PLUGIN=OFF "-DCMAKE_CUDA_FLAGS=${flags//,/ }"
done

# SWISH_SKIP_TESTS=1: builds and benchmarks only (kernel tuning rounds).
if [ "${SWISH_SKIP_TESTS:-0}" != 1 ]; then
conf=$out/conformance.log
step "conformance driver, TensorRT 10.16 headers" "$conf" .build/swish_conformance --require-gpu
step "conformance driver, TensorRT 11.1 headers" "$conf" .build/trt11/swish_conformance --require-gpu
step "C ABI test" "$conf" .build/swish_capi_test
grep -E "passed|FAIL" "$conf" | tee -a "$summary"

san=$out/sanitizer.log
# shellcheck disable=SC2329 # called through step()
sanitize() { timeout 150 compute-sanitizer --error-exitcode 1 "$@"; }
step "compute-sanitizer memcheck: C ABI test" "$san" sanitize --tool memcheck --leak-check full .build/swish_capi_test
step "compute-sanitizer racecheck: C ABI test" "$san" sanitize --tool racecheck .build/swish_capi_test
step "compute-sanitizer memcheck: conformance 10.16" "$san" sanitize --tool memcheck --leak-check full \
    .build/swish_conformance --require-gpu
step "compute-sanitizer memcheck: conformance 11.1" "$san" sanitize --tool memcheck --leak-check full \
    .build/trt11/swish_conformance --require-gpu
step "compute-sanitizer racecheck: conformance 10.16" "$san" sanitize --tool racecheck \
    .build/swish_conformance --require-gpu
grep -E "ERROR SUMMARY|RACECHECK SUMMARY|LEAK SUMMARY" "$san" | tee -a "$summary"

py=$out/pytest.log
export SWISH_KERNELS_LIB=$repo/.build/libswish_kernels.so
step "pytest tests/test_swish_kernels_gpu.py" "$py" env PYTHONUNBUFFERED=1 \
    python3 -m pytest tests/test_swish_kernels_gpu.py -q -p no:cacheprovider -rs -rP --durations=5 --noconftest
grep -E "^max error" "$py" | tee -a "$summary"
tail -n 1 "$py" | tee -a "$summary"
fi

bench=$out/bench.md
step "benchmark, default build (plain stores)" "$bench" python3 plugin/bench/bench_swish.py \
    --csv "$out/bench.csv" --label default --lib .build/libswish_kernels.so
for variant in "${variants[@]}"; do
    step "benchmark, variant ${variant%%:*}" "$bench" python3 plugin/bench/bench_swish.py --sizes 1M,4M,16M,64M,256M \
        --csv "$out/bench.csv" --label "${variant%%:*}" --lib ".build/variant-${variant%%:*}/libswish_kernels.so"
done

prof=$out/sass_ncu.txt
{
    echo "### resource usage of the sm_90 kernels (libswish_kernels.so)"
    cuobjdump -res-usage .build/libswish_kernels.so 2>&1 | grep -A1 -E "Function .*swish"
    if [ -f .build/release/libswish_kernels.so ]; then # a fat-binary release build copied from another host
        echo "### architectures in .build/release/libswish_kernels.so"
        cuobjdump --list-elf --list-ptx .build/release/libswish_kernels.so | grep -oE '^(ELF|PTX)|sm_[0-9a-z]+' |
            paste - - | sort | uniq -c
    fi
} >"$prof" 2>&1
if command -v ncu >/dev/null; then
    for dt in fp16 fp32; do
        step "ncu: swish ${dt} 64M (SpeedOfLight, memory)" "$prof" timeout 240 ncu --clock-control none \
            --kernel-name regex:swishVector --launch-skip 8 --launch-count 1 --section SpeedOfLight \
            --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy \
            python3 plugin/bench/bench_swish.py --sizes 64M --dtypes "$dt" --iters 3 --csv '' \
            --lib .build/libswish_kernels.so
    done
fi

echo
echo "================ summary ================"
cat "$summary"
echo
grep -E "^\||^NVIDIA|^[A-Z].*SMs" "$bench"
echo "failed steps: $failures"
exit "$failures"
