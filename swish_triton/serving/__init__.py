"""Serving: the embedded-Triton launcher and the Python-backend models."""
