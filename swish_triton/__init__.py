"""Shared Python code of the Swish TensorRT plugin + Triton project.

Clients, models, the engine builder and the tests import from here so that nothing is copied between them.
"""

from swish_triton.reference import swish_ref

__all__ = ["swish_ref"]
