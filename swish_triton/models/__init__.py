"""Code that runs inside Triton's Python-backend stub: the models ``model_repository/<name>/1/model.py`` import.

Nothing here imports the launcher or the supervisor (``swish_triton.serving``): the stub is another process, started
by tritonserver, and loads only what the model needs.
"""
