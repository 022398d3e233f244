"""Tensors between the Python-backend stub and NumPy that come out right under NumPy 1.x and NumPy 2.x.

The stub of the bundled tritonserver 2.51 was compiled with a pybind11 that reads a NumPy array's item size from the
NumPy 1.x layout of the dtype structure. Under NumPy 2 that field reads 0 for the float types, so the stub's own
NumPy calls go wrong: ``pb_utils.Tensor(name, array)`` sends 0 bytes (Triton answers "output tensor shape does not
match size of output"), and ``tensor.as_numpy()`` gives arrays with zero strides (every element reads as the first).
DLPack carries the element size in its own record, so under NumPy 2 both directions go through DLPack; under NumPy
1.x the stub's own calls are used, as before.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

try:  # Only importable inside the Python-backend stub.
    import triton_python_backend_utils as pb_utils
except ImportError:  # pragma: no cover - the module is imported outside Triton by tests and linters
    pb_utils = None

NUMPY_2 = int(np.__version__.split(".")[0]) >= 2

# The stub renames a capsule it consumed to "used_dlpack", where the DLPack protocol says "used_dltensor". NumPy's
# capsule destructor knows only the protocol's names: on the stub's name it prints an "unraisable" traceback for
# every output (it frees nothing, which is right: the stub's tensor owns the DLPack record and releases it). Giving
# the capsule the protocol's name keeps the server log clean. The name must outlive the capsule: a module constant.
_USED_CAPSULE_NAME = ctypes.create_string_buffer(b"used_dltensor")
_capsule_set_name = ctypes.pythonapi.PyCapsule_SetName
_capsule_set_name.argtypes = [ctypes.py_object, ctypes.c_char_p]
_capsule_set_name.restype = ctypes.c_int


def input_array(tensor: Any) -> np.ndarray:
    """A request's CPU input tensor as a NumPy array (under NumPy 2 a read-only view of the request's memory)."""
    if not NUMPY_2:
        return tensor.as_numpy()
    return np.from_dlpack(tensor)


def output_tensor(name: str, array: np.ndarray) -> Any:
    """A ``pb_utils.Tensor`` named ``name`` holding ``array`` (a CPU array of a numeric type)."""
    if not NUMPY_2:
        return pb_utils.Tensor(name, array)
    # The stub takes C-ordered data only; NumPy exports only writable arrays through unversioned DLPack, which is
    # what this stub reads (read-only arrays are views of a request's input: copied here, as as_numpy() copies).
    data = np.ascontiguousarray(array)
    if not data.flags.writeable:
        data = data.copy()
    capsule = data.__dlpack__()
    tensor = pb_utils.Tensor.from_dlpack(name, capsule)
    _capsule_set_name(capsule, _USED_CAPSULE_NAME)
    return tensor
