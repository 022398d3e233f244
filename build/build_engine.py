"""Build (or, with --check, check) the TensorRT plans of model_repository/: a thin CLI over swish_triton.engine_builder.

Run from a checkout: ``python build/build_engine.py [--check] [MODEL ...]``; ``--help`` lists the options.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Runs from a plain checkout too, where the package is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from swish_triton.engine_builder import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
