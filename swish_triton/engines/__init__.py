"""The TensorRT engine builder (TensorRT >= 10) and its profiling commands."""
