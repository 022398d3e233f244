"""The plugin's CUDA kernels from Python: the ctypes binding of libswish_kernels.so and the Python models' GPU path."""
