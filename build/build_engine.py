"""Build (or, with --check, check) the TensorRT plans of model_repository/: a thin CLI over swish_triton.engines.

``python build/build_engine.py [--check] [MODEL ...]`` (or the console script ``swish-build-engines``);
``--help`` lists the options. Inside a checkout whose Python lacks the package (an NGC TensorRT container's
``python3``), run it as ``PYTHONPATH=. python3 build/build_engine.py`` or ``make engines``.
"""

from __future__ import annotations

from swish_triton.engines.builder import main

if __name__ == "__main__":
    raise SystemExit(main())
