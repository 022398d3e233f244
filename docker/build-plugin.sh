#!/usr/bin/env bash
# The plugin stage of docker/Dockerfile: build libswish.so and libswish_kernels.so into OUT_DIR (default /out).
#
# The NGC TensorRT image's layout is not documented in a form this project could check (docker/README.md,
# "Verified where"), so each fact the build relies on is checked first and a failure names it:
#   cmake on PATH (else PyPI's cmake is installed), nvcc, NvInfer.h and libnvinfer.so where plugin/CMakeLists.txt
#   searches them (or under TENSORRT_ROOT), `import tensorrt` and its plugin registry without a GPU.
#
#   SWISH_BUILD_PLUGIN        1 (default) build; 0: build nothing (the CPU way: OUT_DIR stays empty)
#   CUDA_ARCHITECTURES        empty: the plugin's default list; e.g. 90-real for H100 only
#   TENSORRT_ROOT             empty: the standard locations
#   SWISH_CHECK_REGISTRATION  1 (default): load the plugin into TensorRT's registry; 0 skips (see the message)
set -euo pipefail

out=${1:-/out}
src=${SWISH_SOURCE_DIR:-/src}
mkdir -p "$out"

say() { printf 'build-plugin: %s\n' "$*" >&2; }
fact() {
  printf 'build-plugin: image fact failed: %s\n' "$*" >&2
  exit 1
}

if [ "${SWISH_BUILD_PLUGIN:-1}" != "1" ]; then
  say "SWISH_BUILD_PLUGIN=${SWISH_BUILD_PLUGIN}: no plugin built; the server serves the Python-backend models only"
  exit 0
fi

if ! command -v cmake >/dev/null; then
  say "no cmake on PATH in this image: installing PyPI's cmake"
  python3 -m pip install --no-cache-dir "cmake>=3.24,<4" >&2 || fact "no cmake on PATH, and pip could not install it"
fi
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] ||
  fact "nvcc is neither on PATH nor /usr/local/cuda/bin/nvcc (the plugin's kernels need the CUDA compiler)"
command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH

trt_root=${TENSORRT_ROOT:-}
include_dirs=(/usr/include/x86_64-linux-gnu /usr/include/aarch64-linux-gnu /usr/local/tensorrt/include)
lib_dirs=(/usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/local/tensorrt/lib)
if [ -n "$trt_root" ]; then
  include_dirs=("$trt_root/include" "${include_dirs[@]}")
  lib_dirs=("$trt_root/lib" "$trt_root/lib64" "${lib_dirs[@]}")
fi
header=""
for d in "${include_dirs[@]}"; do
  if [ -f "$d/NvInfer.h" ]; then header="$d/NvInfer.h" && break; fi
done
[ -n "$header" ] || fact "NvInfer.h is in none of ${include_dirs[*]} (set the build argument TENSORRT_ROOT)"
library=""
for d in "${lib_dirs[@]}"; do
  if compgen -G "$d/libnvinfer.so*" >/dev/null; then library=$(compgen -G "$d/libnvinfer.so*" | head -n 1) && break; fi
done
[ -n "$library" ] || fact "libnvinfer.so is in none of ${lib_dirs[*]} (set the build argument TENSORRT_ROOT)"
say "TensorRT: $header, $library"

cd "$src"
cmake -S plugin -B .build/plugin -DSWISH_BUILD_PLUGIN=ON -DCMAKE_BUILD_TYPE=Release \
  ${CUDA_ARCHITECTURES:+"-DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES}"} \
  ${trt_root:+"-DTENSORRT_ROOT=${trt_root}"}
cmake --build .build/plugin --target swish swish_kernels --parallel "$(nproc)"

# LD_PRELOAD of the plugin only works if the library pulls in libnvinfer itself (Triton opens its backends
# RTLD_LOCAL), and Triton's plugins= option only dlopens it, so registration must be static. Check both now rather
# than at serving time.
readelf -d .build/plugin/libswish.so | grep -qE 'NEEDED.*\[libnvinfer\.so' ||
  { say "error: libswish.so does not declare DT_NEEDED libnvinfer.so" && exit 1; }
if [ "${SWISH_CHECK_REGISTRATION:-1}" = "1" ]; then
  python3 -c "import tensorrt" 2>/dev/null ||
    fact "python3 -c 'import tensorrt' fails during the image build; rebuild with --build-arg SWISH_CHECK_REGISTRATION=0"
  python3 docker/check_plugin_registration.py .build/plugin/libswish.so swish_triton/swish_plugin.json ||
    fact "loading libswish.so into TensorRT's plugin registry failed during the (GPU-less) image build; if the" \
      "message above is a CUDA error rather than a missing creator, rebuild with --build-arg SWISH_CHECK_REGISTRATION=0"
else
  say "SWISH_CHECK_REGISTRATION=0: the plugin's registration is not checked at build time"
fi
cp .build/plugin/libswish.so .build/plugin/libswish_kernels.so "$out/"
# The Python models' one-call-per-batch extension, built where this image has Python >= 3.11 headers (python3-dev);
# without it they call the library through ctypes (plugin/README.md).
if [ -f .build/plugin/swish_batch.abi3.so ]; then
  cp .build/plugin/swish_batch.abi3.so "$out/"
else
  say "no swish_batch.abi3.so (no Python >= 3.11 headers in this image): the Python models will use ctypes"
fi
