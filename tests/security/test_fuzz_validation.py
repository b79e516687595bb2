"""Coverage-guided fuzzing of manifest validation (catalog_service/domain), bounded."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from imgapi_common.errors import ImgapiError
from tests.security.fuzzing import bounded_run, load_targets

targets = load_targets()


def test_bounded_fuzz_run_finds_nothing(tmp_path: Path) -> None:
    r = bounded_run("validation", 20000, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Done 20000 runs" in r.stderr
    assert not list((tmp_path / "artifacts").iterdir())


def test_an_infinite_v_is_accepted_and_rendered_as_null() -> None:
    """Found by a bounded run: an update setting ``v`` to "1e400" (Number(): Infinity, which the
    reference's check lets through) renders ``"v": null``, as JSON.stringify does."""
    targets.validation_one(
        base64.b64decode("////////////////////////////sLGys7QwEAAAAAAAAAAAAABmYWxzZQC6//+7AP///+3u7w==")
    )


def test_the_target_reaches_both_outcomes(monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes: list[str] = []
    accepted, expected = targets._accepted, targets._expected

    def on_accept(rec: dict[str, Any], cfg: Any, *, complete: bool) -> None:
        outcomes.append("accepted")
        accepted(rec, cfg, complete=complete)

    def on_error(e: ImgapiError) -> None:
        outcomes.append(e.code)
        expected(e)

    monkeypatch.setattr(targets, "_accepted", on_accept)
    monkeypatch.setattr(targets, "_expected", on_error)
    for i in range(400):
        targets.validation_one(bytes((i * 7 + j * 13) % 256 for j in range(96)))
    assert {"accepted", "ValidationFailed", "InvalidParameter"} <= set(outcomes)


def test_the_target_lets_an_undocumented_exception_through(monkeypatch: pytest.MonkeyPatch) -> None:
    def crashes(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(targets, "build_record", crashes)
    monkeypatch.setattr(targets, "apply_update", crashes)
    with pytest.raises(KeyError):
        for i in range(50):
            targets.validation_one(bytes([i]) * 64)


def test_the_target_refuses_another_error_code(monkeypatch: pytest.MonkeyPatch) -> None:
    def internal(*args: Any, **kwargs: Any) -> Any:
        raise ImgapiError("InternalError", "boom")

    monkeypatch.setattr(targets, "build_record", internal)
    monkeypatch.setattr(targets, "apply_update", internal)
    with pytest.raises(AssertionError):
        for i in range(50):
            targets.validation_one(bytes([i]) * 64)
