"""Ping (incl. ?error= samples), /state, /authkeys/reload with auth none."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.gateway.helpers import err


def test_ping_dc(dc: httpx.Client) -> None:
    r = dc.get("/ping")
    assert r.json() == {"ping": "pong", "version": "4.11.0", "imgapi": True, "pid": os.getpid()}


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("ValidationFailed", 422, "ValidationFailed"),
        ("ValidationFailedError", 422, "ValidationFailed"),
        ("InvalidParameter", 422, "InvalidParameter"),
        ("ImageFilesImmutable", 422, "ImageFilesImmutable"),
        ("ImageAlreadyActivated", 422, "ImageAlreadyActivated"),
        ("NoActivationNoFile", 422, "NoActivationNoFile"),
        ("OperatorOnly", 403, "OperatorOnly"),
        ("ImageUuidAlreadyExists", 409, "ImageUuidAlreadyExists"),
        ("StorageIsDown", 503, "StorageIsDown"),
        ("StorageUnsupported", 503, "StorageUnsupported"),
        ("RemoteSource", 503, "RemoteSourceError"),
        ("RemoteSourceError", 503, "RemoteSourceError"),
        ("", 500, "InternalError"),
        ("Internal", 500, "InternalError"),
        ("ResourceNotFound", 500, "InternalError"),
        ("Upload", 500, "InternalError"),
        ("NotImplemented", 500, "InternalError"),
        ("Bogus", 422, "InvalidParameter"),
        ("MethodNotAllowed", 422, "InvalidParameter"),
        ("InvalidVersionError", 422, "InvalidParameter"),
    ],
)
def test_ping_error_samples(dc: httpx.Client, name: str, status: int, code: str) -> None:
    body = err(dc.get(f"/ping?error={name}"), status, code)
    if code == "ValidationFailed":
        assert body == {"code": "ValidationFailed", "message": "boom", "errors": []}
    if code == "InvalidParameter" and name.startswith("InvalidParameter"):
        assert body["errors"] == [{"field": "foo", "code": "Invalid"}]
    elif code == "InvalidParameter":
        full = name if name.endswith("Error") else name + "Error"
        assert body == {
            "code": "InvalidParameter",
            "message": f"unknown error: {full}",
            "errors": [{"field": "error", "code": "Missing"}],
        }
    if name == "ResourceNotFound":
        assert body["message"] == 'do not have a sample "ResourceNotFoundError" error'


def test_state(dc: httpx.Client) -> None:
    r = dc.get("/state")
    assert r.status_code == 200 and "local" in r.json()["storageTypes"]
    r = dc.post("/state?action=dropcaches")
    assert r.status_code == 202 and r.content == b""
    assert (
        err(dc.post("/state?action=nope"), 409, "InvalidArgument")["message"]
        == '"nope" is not a valid action'
    )
    assert err(dc.post("/state"), 409, "MissingParameter")["message"] == '"action" is required'


def test_authkeys_reload_noop(dc: httpx.Client) -> None:
    r = dc.post("/authkeys/reload")
    assert r.status_code == 200 and r.json() == {}
