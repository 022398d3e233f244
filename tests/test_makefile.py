"""The Makefile's help against the README: every command one lists, the other lists too."""

from __future__ import annotations

import re
import subprocess

from tests.support import REPO


def test_make_help_lists_the_commands_the_readme_lists() -> None:

    proc = subprocess.run(["make", "-s", "help"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    in_help = set(re.findall(r"^make ([\w-]+)", proc.stdout, re.M))
    readme = (REPO / "README.md").read_text()
    in_readme = set(re.findall(r"^make (\w+)\s+#", readme, re.M))  # the opening block: demo, test
    in_readme |= set(re.findall(r"^\| `make ([\w-]+)", readme.split("## Other commands", 1)[1], re.M))
    assert in_help == in_readme
