"""Accept-Version negotiation against node-semver itself (the library restify, and so IMGAPI,
uses): random ranges, the same answer for the two server versions and a few others."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.http.versions import InvalidRange, satisfies
from tests.compat.test_node_client import NODE_DIR, node_client
from tests.gateway.test_parser_properties import ranges

__all__ = ["node_client"]

VERSIONS = [(1, 0, 0), (2, 0, 0), (0, 1, 0), (1, 2, 3), (3, 0, 0)]
#: Reads one JSON range per line; answers node-semver's satisfies() for each version.
_ORACLE = """
var semver = require('semver');
var versions = JSON.parse(process.argv[1]);
require('readline').createInterface({input: process.stdin}).on('line', function (line) {
  var r = JSON.parse(line);
  process.stdout.write(JSON.stringify(versions.map(function (v) { return semver.satisfies(v, r); })) + '\\n');
});
"""


class NodeSemver:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["node", "-e", _ORACLE, json.dumps([".".join(map(str, v)) for v in VERSIONS])],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def satisfies(self, text: str) -> list[bool]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(text) + "\n")
        self.proc.stdin.flush()
        answer: list[bool] = json.loads(self.proc.stdout.readline())
        return answer

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def node_semver(node_client: Path) -> Iterator[NodeSemver]:
    oracle = NodeSemver()
    yield oracle
    oracle.close()


def ours(text: str) -> list[bool]:
    out = []
    for v in VERSIONS:
        try:
            out.append(satisfies(v, text))
        except (InvalidRange, ValueError):
            out.append(False)  # node-semver: an invalid range satisfies nothing
    return out


garbage = st.text(alphabet="0123456789.xX*^~<>=|- v", max_size=14)


def test_satisfies_agrees_with_node_semver(node_semver: NodeSemver) -> None:
    @settings(max_examples=600, deadline=None, database=None)
    @given(st.one_of(ranges, garbage))
    @example("*")
    @example("~1")
    @example("~2")
    @example("^2")
    @example("1.x || >=2.5.0 || 5.0.0 - 7.2.3")
    @example(">=1 <2")
    @example("1.0.0-beta")
    @example("v2")
    @example("")
    @example("v=0")  # a partial version may be led by any run of "v" and "="
    @example("v=1.2.3")  # a full one by a single "v" only
    @example("^v=1.2.3")  # ... except after ~ or ^
    @example("v= 1")  # an operator's spaces are dropped only where a version starts
    @example("v= 1 - 2")
    def run(text: str) -> None:
        assert ours(text) == node_semver.satisfies(text), text

    run()
