"""``python -m swish_triton.serving``: serve a model repository with the embedded tritonserver (``swish-serve``)."""

import sys

from swish_triton.serving.serve_command import main

sys.exit(main())
