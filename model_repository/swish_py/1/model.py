"""Served by Triton's Python backend; the implementation lives in swish_triton.serving.python_model."""

from swish_triton.serving.python_model import SwishModel as TritonPythonModel

__all__ = ["TritonPythonModel"]
