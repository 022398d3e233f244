"""Product files read as reference, not as a lab notebook, and their relative Markdown links resolve.

The scan covers the documentation and the code users run or read (README.md, docs/, plugin/, build/, docker/,
deploy/, swish_triton/, client/, bench/, model_repository/): text and source files, not measurement data (CSV).
A failure lists every offending ``file:line``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

ROOTS = (
    "README.md",
    "docs",
    "plugin",
    "build",
    "docker",
    "deploy",
    "swish_triton",
    "client",
    "bench",
    "model_repository",
)
TEXT_SUFFIXES = {
    ".md",
    ".txt",
    ".py",
    ".sh",
    ".yaml",
    ".yml",
    ".tpl",
    ".json",
    ".toml",
    ".ini",
    ".cfg",
    ".pbtxt",
    ".cu",
    ".cuh",
    ".h",
    ".hpp",
    ".cpp",
    ".cmake",
    ".map",
}
TEXT_NAMES = {"Dockerfile", "CMakeLists.txt", ".helmignore"}
SKIP_DIRS = {"__pycache__", "results", ".build", "third_party", "node_modules"}
PROSE_SUFFIXES = {".md", ".txt"}

# Planning and acceptance wording, anywhere in a product file (case-insensitive, whole words).
PLANNING = [
    (re.compile(r"\bbars?\b", re.I), "'bar' (a performance target)"),
    (re.compile(r"\bpredict(?:ion|ions|ed)?\b", re.I), "'prediction'"),
    (re.compile(r"\bexpected\s+(?:vs\.?|versus|against)\s+measured\b", re.I), "'expected vs measured'"),
    (re.compile(r"\|\s*expected\s*\|", re.I), "an 'expected' table column"),
    (re.compile(r"\bwhat was verified\b", re.I), "'what was verified'"),
    (re.compile(r"\bacceptance\b", re.I), "'acceptance'"),
    (re.compile(r"\bwithout (?:a|any) package registry\b", re.I), "'without a package registry'"),
    (re.compile(r"\b(?:built|measured|tested|verified|run|ran) here\b", re.I), "'here' for the build host"),
]
# In prose, 'here' has no meaning a reader can rely on (which host? which page?): name the place instead.
PROSE_ONLY = [(re.compile(r"\bhere\b", re.I), "'here' (name the host, page or folder)")]

# Legitimate uses of a flagged word: removed from a line before it is scanned. Keep this list short and explicit.
ALLOWED = [
    re.compile(r"\bprogress bars?\b", re.I),
    re.compile(r"\b(?:bar|error bar)s? (?:chart|plot)s?\b", re.I),
    re.compile(r"\bax\.barh?\(", re.I),  # matplotlib
    re.compile(r"\bURL built here\b"),  # a code comment: the URL is built in that function, not on a host
]


def product_files(repo: Path = REPO) -> list[Path]:
    files = []
    for root in ROOTS:
        top = repo / root
        if top.is_file():
            files.append(top)
            continue
        if not top.is_dir():
            continue
        for path in sorted(top.rglob("*")):
            if any(part in SKIP_DIRS for part in path.relative_to(repo).parts):
                continue
            if path.is_file() and (path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES):
                files.append(path)
    return files


def planning_words(files: list[Path], repo: Path = REPO) -> list[str]:
    """One ``file:line: why: text`` per line that carries planning wording."""
    found = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        prose = path.suffix in PROSE_SUFFIXES and path.name not in TEXT_NAMES
        rules = PLANNING + (PROSE_ONLY if prose else [])
        for number, line in enumerate(text.splitlines(), 1):
            scanned = line
            for allowed in ALLOWED:
                scanned = allowed.sub(" ", scanned)
            for pattern, why in rules:
                if pattern.search(scanned):
                    found.append(f"{path.relative_to(repo)}:{number}: {why}: {line.strip()[:160]}")
    return found


def test_product_files_carry_no_planning_words() -> None:
    files = product_files()
    assert any(p.name == "performance.md" for p in files), "the scan found no docs: wrong repository root?"
    found = planning_words(files)
    assert not found, "planning wording in product files:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("name", "line", "flagged"),
    [
        ("perf.md", "Swish reaches the bar (>= 0.9x identity).", True),
        ("perf.md", "| change | expected | measured |", True),
        ("notes.md", "Measured here on the build host.", True),
        ("bench.py", 'print("prediction: 0.95")', True),
        ("bench.py", "# the plan was built here", True),
        ("bench.py", "# fail here, loudly", False),
        ("perf.md", "A progress bar shows the sweep.", False),
        ("perf.md", "Swish reaches 0.99x copy.", False),
    ],
)
def test_the_scan_flags_planted_words(tmp_path: Path, name: str, line: str, flagged: bool) -> None:
    path = tmp_path / name
    path.write_text(f"first line\n{line}\n")
    found = planning_words([path], repo=tmp_path)
    assert bool(found) == flagged, found
    if flagged:
        assert found[0].startswith(f"{name}:2: ")


# --------------------------------------------------------------------------------------------------------------------
# Relative Markdown links

LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (except - and _), spaces to hyphens."""
    text = re.sub(r"<[^>]+>", "", heading).replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    result = set()
    for heading in HEADING.findall(text):
        base = slug(heading)
        n = seen.get(base, 0)
        result.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    return result


def broken_links(files: list[Path], repo: Path = REPO) -> list[str]:
    broken = []
    for path in files:
        if path.suffix != ".md":
            continue
        text = CODE_SPAN.sub("", FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), path.read_text(encoding="utf-8")))
        for number, line in enumerate(text.splitlines(), 1):
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
                    continue
                file_part, _, anchor = target.partition("#")
                resolved = (path.parent / file_part).resolve() if file_part else path
                where = f"{path.relative_to(repo)}:{number}: {target}"
                if not resolved.exists():
                    broken.append(f"{where}: no such file")
                elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                    broken.append(f"{where}: no heading with anchor #{anchor}")
    return broken


def test_relative_markdown_links_resolve() -> None:
    broken = broken_links(product_files())
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_link_check_flags_a_missing_file_and_anchor(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title\n\n## Known issues\n\n[ok](#known-issues) [gone](b.md) [bad](#nope)\n")
    broken = broken_links([tmp_path / "a.md"], repo=tmp_path)
    assert [b.split(": ", 1)[1] for b in broken] == ["b.md: no such file", "#nope: no heading with anchor #nope"]
