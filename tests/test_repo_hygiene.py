"""The repository stands on its own: no tracked file cites the reference spec folder kept outside it.

Comments and docs say the rule itself ("a body that is not JSON counts as absent"), never where an
outside document states it ("endpoints.md §2.3", "README §5.1", "../shared/..."): a reader of the
repository has no such folder. Sections of public standards stay citable ("RFC 9110 §13").
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: A section sign (unless it follows "RFC <number>"), a file of the spec folder, or its path.
CITATION = re.compile(
    r"(?<!RFC \d{4} )(?<!RFC \d{3} )§"
    r"|\b(?:endpoints|errors|manifest|docker-import|examples)\.md\b"
    r"|\.\./shared\b|\bshared/(?:spec|fixtures|bench)\b"
)

#: Generated or binary files, and this test (which names what it looks for).
_SKIPPED_SUFFIXES = (".pb", "_pb2.py", "_pb2.pyi", "_pb2_grpc.py", ".png", ".gif", ".jpg", ".ico", ".gz")
_THIS = "tests/test_repo_hygiene.py"


def _tracked_files() -> list[str]:
    """Tracked files (``git ls-files``); outside a git checkout, every file of the tree."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "node_modules", "__pycache__", "mutants", "build"}
        return [
            p.relative_to(ROOT).as_posix()
            for p in ROOT.rglob("*")
            if p.is_file() and not skip.intersection(p.relative_to(ROOT).parts)
        ]
    return [name for name in out.decode().split("\0") if name]


def spec_citations(names: list[str]) -> list[str]:
    """``path:line: text`` of every line citing the spec folder."""
    found = []
    for name in names:
        if name == _THIS or name.endswith(_SKIPPED_SUFFIXES):
            continue
        path = ROOT / name
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if CITATION.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
    return found


def test_no_file_cites_the_spec_folder() -> None:
    offenders = spec_citations(_tracked_files())
    assert not offenders, (
        "say the rule in your own words instead of citing the spec folder (not in the repository):\n"
        + "\n".join(offenders)
    )


def test_the_pattern_catches_citations_and_spares_rfcs() -> None:
    cited = [
        "# endpoints.md §2.3 step 4",
        '"""Rendering errors (errors.md)."""',
        "see manifest.md",
        "# README §5.1",
        "copied from ../shared/fixtures",
    ]
    spared = ["RFC 9110 §13.1.5: a strong ETag must match", "docs/limits.md", "the errors module"]
    assert all(CITATION.search(line) for line in cited)
    assert not any(CITATION.search(line) for line in spared)
