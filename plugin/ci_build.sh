#!/usr/bin/env bash
# What CI runs for the plugin on a machine with nvcc but no GPU and, usually, no TensorRT headers:
#   1. the kernels + C ABI (libswish_kernels.so) and the C ABI test binary, with -Werror;
#   2. for every TensorRT header set found (TENSORRT_INCLUDE_DIR, else $SWISH_TENSORRT_HEADERS/*/include, by
#      default ../shared/third_party/tensorrt-include/*/include next to the checkout, else
#      third_party/tensorrt-*/include), the plugin (libswish.so, libswish_dynamic.so) and the conformance driver,
#      whose host-side cases then run; when no headers are found this step is skipped, and says so.
# Exits non-zero on any compile or test failure. Builds one CUDA architecture (SWISH_CUDA_ARCH, default 90-real) to
# keep CI short; release builds use CMakeLists.txt's fat-binary default.
#
#   plugin/ci_build.sh                                    # outputs under .build/ci/
#   TENSORRT_INCLUDE_DIR=/usr/include/x86_64-linux-gnu plugin/ci_build.sh
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${SWISH_CI_BUILD_DIR:-$repo/.build/ci}
arch=${SWISH_CUDA_ARCH:-90-real}
jobs=$(nproc)

for tool in cmake nvcc; do
    if ! command -v "$tool" >/dev/null; then
        echo "ci_build: $tool not found on PATH" >&2
        exit 1
    fi
done
echo "ci_build: $(nvcc --version | tail -1), $(cmake --version | head -1), CUDA arch $arch"

build() { # build DIR CMAKE-ARGS...
    local dir=$1
    shift
    cmake -S "$repo/plugin" -B "$dir" -DCMAKE_CUDA_ARCHITECTURES="$arch" -DSWISH_WERROR=ON -DSWISH_BUILD_TESTS=ON "$@"
    cmake --build "$dir" -j "$jobs"
}

echo "== kernels + C ABI (no TensorRT)"
build "$out/kernels" -DSWISH_BUILD_PLUGIN=OFF
echo "ci_build: built $out/kernels/libswish_kernels.so and swish_capi_test"

header_dirs=()
if [ -n "${TENSORRT_INCLUDE_DIR:-}" ]; then
    header_dirs+=("$TENSORRT_INCLUDE_DIR")
else
    headers_root=${SWISH_TENSORRT_HEADERS:-$repo/../shared/third_party/tensorrt-include}
    for dir in "$headers_root"/*/include "$repo"/third_party/tensorrt-*/include; do
        [ -f "$dir/NvInfer.h" ] && header_dirs+=("$dir")
    done
fi

if [ "${#header_dirs[@]}" -eq 0 ]; then
    echo "ci_build: SKIPPED the TensorRT plugin: no TensorRT headers found" \
        "(set TENSORRT_INCLUDE_DIR or SWISH_TENSORRT_HEADERS; see plugin/README.md)"
    exit 0
fi

for include in "${header_dirs[@]}"; do
    name=$(basename "$(dirname "$include")")
    name=${name#tensorrt-}
    echo "== plugin against $include"
    lib_args=(-DSWISH_NVINFER_STUB=ON)
    if [ -n "${TENSORRT_LIB_DIR:-}" ]; then
        lib_args=(-DTENSORRT_LIB_DIR="$TENSORRT_LIB_DIR")
    fi
    build "$out/plugin-$name" -DSWISH_BUILD_PLUGIN=ON -DTENSORRT_INCLUDE_DIR="$include" "${lib_args[@]}"
    "$out/plugin-$name/swish_conformance"
done
echo "ci_build: OK"
