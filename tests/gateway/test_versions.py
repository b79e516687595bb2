"""Accept-Version: node-semver range semantics against the server versions 1.0.0 and 2.0.0."""

from __future__ import annotations

import pytest

from gateway.http.versions import negotiate, satisfies

V2 = [
    "*",
    "~2",
    "2",
    ">=1",
    "1.x || 2.x",
    "^2",
    "2.x",
    ">1",
    "~>2.0",
    "v2",
    ">= 1",
    "1 - 2",
    "x",
    "2.0.0",
    ">=2.0.0-beta",
    "",  # present but empty: node-semver's empty range is "*"
]
V1 = [None, "~1", "1.0.0", "<2", "1.x", "^1", "<=1", "=1.0.0", "1", "~1.0", "1.0 - 1.9"]
BAD = ["~3", "~99", "garbage", "3.x", "0.x", "^0", "<1", ">2", "2.0.0-beta", "1.2.3.4", ">=3 <4", "~1 ~2"]


@pytest.mark.parametrize("rng", V2)
def test_ranges_admitting_2(rng: str) -> None:
    n = negotiate(rng)
    assert n is not None and n.include_channels


@pytest.mark.parametrize("rng", V1)
def test_ranges_v1_only(rng: str | None) -> None:
    n = negotiate(rng)
    assert n is not None and not n.include_channels


@pytest.mark.parametrize("rng", BAD)
def test_unsatisfiable_or_garbage(rng: str) -> None:
    assert negotiate(rng) is None


@pytest.mark.parametrize(
    ("version", "rng", "expected"),
    [
        ((1, 0, 0), "^0.9", False),
        ((1, 0, 0), "^1.0.0", True),
        ((2, 0, 0), "^1.0.0", False),
        ((1, 0, 0), "~1.0.0", True),
        ((1, 0, 0), ">1.0.0", False),
        ((2, 0, 0), ">1.0.0", True),
        ((2, 0, 0), "<=2.0.0", True),
        ((2, 0, 0), "<2.0.0", False),
        ((2, 0, 0), "1.5.0 - 2.0.0", True),
        ((2, 0, 0), "1.5.0 - 1.9.9", False),
        ((1, 0, 0), ">=0.5 <1.0.1", True),
        ((2, 0, 0), "1.x.x || >=3", False),
    ],
)
def test_satisfies(version: tuple[int, int, int], rng: str, expected: bool) -> None:
    assert satisfies(version, rng) is expected
