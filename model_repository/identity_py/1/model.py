"""Served by Triton's Python backend; the implementation lives in swish_triton.models.python_models."""

from swish_triton.models.python_models import IdentityModel as TritonPythonModel

__all__ = ["TritonPythonModel"]
