"""The project's exception base: every error the package raises on purpose is a ``SwishError``.

Callers that want "anything this project refused, with a message meant for a person" catch ``SwishError``; the
subclasses live beside the code that raises them (``LauncherError``, ``BuildError``, ``ModelConfigError``, ...).
"""

from __future__ import annotations


class SwishError(Exception):
    """Base of every exception the project raises deliberately; ``str(exc)`` is a complete one-line message."""
