"""What every command-line tool of the project shares: the help format, and how bad input is reported."""

from __future__ import annotations

import argparse
import sys


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown where there is one (no "(default: None)"), description and epilog kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default in ("", []):
            return action.help
        return super()._get_help_string(action)


EXIT_USAGE = 2
"""The exit status of every command for bad input (arguments, settings, files it was pointed at)."""


def usage_error(error: object, prog: str = "") -> int:
    """Print ``error: <error>`` (after ``<prog>: `` when given) on stderr and return `EXIT_USAGE`, for a command's
    ``except SomeError as exc: return usage_error(exc)``."""
    print(f"{prog}: error: {error}" if prog else f"error: {error}", file=sys.stderr)
    return EXIT_USAGE
