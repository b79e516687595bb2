"""Issue 16, the request-edge classes: each test pins the reference's answer (status, exact body bytes,
the headers that matter) for one class of request the gateway used to answer differently.

Written from the class descriptions and the REST contract (the reference is not at hand): bodies are
compared byte for byte in IMGAPI's 2-space JSON.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import PUBLIC_CHANNELS, Stack, start_stack
from tests.gateway.helpers import LUKE, VADER, create

ICON = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
FILE = b"edge compat file bytes"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("compat-edge"), mode="dc")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def channel_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(
        tmp_path_factory.mktemp("compat-edge-ch"), mode="private", channels=PUBLIC_CHANNELS, admin_uuid=None
    )
    yield s
    s.stop()


@pytest.fixture()
def c(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client(**{"Accept-Version": "*"}) as client:
        yield client


def pretty(obj: Any) -> bytes:
    return json.dumps(obj, indent=2).encode()


def expect(r: httpx.Response, status: int, body: Any = None) -> None:
    """Status, exact body bytes and the JSON headers of an IMGAPI answer (no body for 304/204)."""
    assert r.status_code == status, r.text
    if body is None:
        assert r.content == b""
        return
    assert r.content == pretty(body), r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-length"] == str(len(r.content))


def bad_param(
    name: str, message: str, code: str = "InvalidParameter", field_code: str = "Invalid"
) -> dict[str, Any]:
    return {"code": code, "message": message, "errors": [{"field": name, "code": field_code}]}


def activated(c: httpx.Client, **extra: Any) -> str:
    uuid: str = create(c, account=VADER, **extra)["uuid"]
    r = c.put(f"/images/{uuid}/file?compression=none", content=FILE)
    assert r.status_code == 200, r.text
    assert c.post(f"/images/{uuid}?action=activate", json={}).status_code == 200
    return uuid


# --- class 1: empty query values are values ---------------------------------------------------------


@pytest.mark.parametrize("name", ["owner", "name", "version", "os", "type"])
def test_class1_empty_filter_matches_nothing(c: httpx.Client, name: str) -> None:
    activated(c)
    assert c.get("/images").json() != []
    expect(c.get(f"/images?{name}="), 200, [])


@pytest.mark.parametrize("name", ["inclAdminFields"])
def test_class1_empty_boolean_is_not_a_boolean_on_reads(c: httpx.Client, name: str) -> None:
    uuid = activated(c)
    want = bad_param(name, f'invalid value for "{name}" param: "" is not a boolean')
    expect(c.get(f"/images?{name}="), 422, want)
    expect(c.get(f"/images/{uuid}?{name}="), 422, want)


def test_class1_empty_force_all_channels_does_not_delete(c: httpx.Client) -> None:
    uuid = activated(c)
    want = bad_param(
        "force_all_channels", 'invalid value for "force_all_channels" param: "" is not a boolean'
    )
    expect(c.delete(f"/images/{uuid}?force_all_channels="), 422, want)
    assert c.get(f"/images/{uuid}").status_code == 200


def test_class1_update_with_empty_account_is_a_user_request(c: httpx.Client) -> None:
    uuid = activated(c, public=True)
    r = c.post(f"/images/{uuid}?action=update&account=", json={"billing_tags": ["x"]})
    expect(r, 422, {"code": "NotImageOwner", "message": f"account  is not the owner of image {uuid}"})
    assert "billing_tags" not in c.get(f"/images/{uuid}").json()


# --- class 3: repeated and bracketed parameters -----------------------------------------------------


def test_class3_repeated_channel(channel_stack: Stack) -> None:
    with channel_stack.client() as c:
        want = {
            "code": "ValidationFailed",
            "message": "unknown channel: dev,staging",
            "errors": [{"field": "channel", "code": "Invalid"}],
        }
        expect(c.get("/images?channel=dev&channel=staging"), 422, want)


def test_class3_repeated_action(c: httpx.Client) -> None:
    uuid = activated(c)
    want = bad_param("action", '"activate,disable" is not a valid action')
    expect(c.post(f"/images/{uuid}?action=activate&action=disable", json={}), 422, want)


def test_class3_bracketed_limit_is_a_number(c: httpx.Client) -> None:
    for _ in range(3):
        activated(c)
    assert len(c.get("/images?limit[]=2").json()) == 2  # Number(["2"]) is 2
    want = bad_param("state", 'invalid limit: "2,3"')
    expect(c.get("/images?limit=2&limit=3"), 422, want)


# --- class 4: 304 from file and icon downloads carries the validators -------------------------------


def test_class4_304_carries_etag_and_last_modified(c: httpx.Client) -> None:
    uuid = create(c, account=VADER)["uuid"]
    assert c.put(f"/images/{uuid}/file?compression=none", content=FILE).status_code == 200
    assert (
        c.put(f"/images/{uuid}/icon", content=ICON, headers={"Content-Type": "image/png"}).status_code == 200
    )
    for path, data in ((f"/images/{uuid}/file", FILE), (f"/images/{uuid}/icon", ICON)):
        ok = c.get(path)
        assert ok.status_code == 200 and ok.headers["etag"] == hashlib.sha1(data).hexdigest()
        r = c.get(path, headers={"If-None-Match": "*"})
        expect(r, 304)
        assert r.headers["etag"] == ok.headers["etag"]
        assert r.headers["last-modified"] == ok.headers["last-modified"]


# --- class 10: no Python values in messages --------------------------------------------------------


@pytest.mark.parametrize(("headers", "shown"), [({}, "undefined"), ({"Content-Type": ""}, "")])
def test_class10_icon_content_type_as_javascript_prints_it(
    c: httpx.Client, headers: dict[str, str], shown: str
) -> None:
    uuid = create(c, account=VADER)["uuid"]
    r = c.put(f"/images/{uuid}/icon", content=ICON, headers=headers)
    message = f"invalid content-type, {shown}, must be one of image/jpeg, image/gif, image/png"
    expect(r, 400, {"code": "Upload", "message": message})
    assert c.get(f"/images/{uuid}").json().get("icon") is None


# --- class 5: order of conditional checks -----------------------------------------------------------


def test_class5_icon_missing_before_if_none_match(c: httpx.Client) -> None:
    uuid = activated(c)
    r = c.get(f"/images/{uuid}/icon", headers={"If-None-Match": "*"})
    expect(r, 404, {"code": "ResourceNotFound", "message": f'image "{uuid}" has no icon'})


def test_class5_if_none_match_before_invalid_action(c: httpx.Client) -> None:
    uuid = activated(c)
    etag = c.get(f"/images/{uuid}").headers["etag"]
    r = c.post(f"/images/{uuid}?action=bogus", json={}, headers={"If-None-Match": "*"})
    expect(r, 412, {"code": "PreconditionFailed", "message": f"if-none-match '*' matched etag '{etag}'"})


# --- class 6: malformed percent-encoding, empty uuid segment ----------------------------------------


@pytest.mark.parametrize("raw", [b"/images/%zz", b"/images/%E0%A4%A", b"/images/%FF/file", b"/ping%"])
def test_class6_uri_malformed_before_version(stack: Stack, raw: bytes) -> None:
    with stack.client(**{"Accept-Version": "~99"}) as c:
        r = c.get(httpx.URL(stack.base_url).copy_with(raw_path=raw))
    expect(r, 400, {"code": "BadRequestError", "message": "URI malformed"})


def test_class6_empty_uuid_segment_is_405(c: httpx.Client, stack: Stack) -> None:
    r = c.get(httpx.URL(stack.base_url).copy_with(raw_path=b"/images//file/from-url"))
    expect(r, 405, {"code": "MethodNotAllowedError", "message": "GET is not allowed"})
    assert r.headers["allow"] == "POST"


# --- class 7: an empty Accept-Version is the v2 view ------------------------------------------------


def test_class7_empty_accept_version_is_v2(channel_stack: Stack) -> None:
    with channel_stack.client() as c:
        uuid = create(c, account=LUKE)["uuid"]
        v2 = c.get(f"/images/{uuid}", headers={"Accept-Version": ""})
        v1 = c.get(f"/images/{uuid}")
    assert v2.status_code == 200 and v2.json()["channels"] == ["dev"]
    assert "channels" not in v1.json()


# --- class 8: marker dates as JavaScript's Date reads them ------------------------------------------


@pytest.mark.parametrize("marker", ["2015", "2015-06", "12345", "2015-06-01t10:00:00z", "2015-06-01 10:00"])
def test_class8_marker_dates(c: httpx.Client, marker: str) -> None:
    activated(c)
    r = c.get(f"/images?marker={marker}")
    assert r.status_code == 200, r.text
    later = c.get(f"/images?marker={marker}&sort=published_at.desc")
    assert later.status_code == 200
    if marker == "12345":  # a year beyond every image: nothing after it, everything before it
        assert r.json() == [] and later.json() != []
    else:
        assert r.json() != []


# --- class 9: boolean texts and /ping?error= samples ------------------------------------------------


SAMPLES = {
    "ValidationFailed": (422, {"code": "ValidationFailed", "message": "boom", "errors": []}),
    "InvalidParameter": (422, bad_param("foo", 'invalid "foo"')),
    "ImageFilesImmutable": (
        422,
        {
            "code": "ImageFilesImmutable",
            "message": "cannot modify files on activated image 82ce32a2-9cb4-9a4c-a303-7a63254bacf4",
        },
    ),
    "ImageAlreadyActivated": (
        422,
        {
            "code": "ImageAlreadyActivated",
            "message": 'image "ed8cd007-2065-0140-8d41-e32247b71748" is already activated',
        },
    ),
    "NoActivationNoFile": (
        422,
        {
            "code": "NoActivationNoFile",
            "message": 'image "ed8cd007-2065-0140-8d41-e32247b71748" cannot be activated: it has no file',
        },
    ),
    "OperatorOnly": (
        403,
        {"code": "OperatorOnly", "message": "this endpoint may only be called by an operator"},
    ),
    "ImageUuidAlreadyExists": (
        409,
        {"code": "ImageUuidAlreadyExists", "message": 'image uuid "undefined" already exists'},
    ),
    "StorageIsDown": (503, {"code": "StorageIsDown", "message": "storage is down at the moment"}),
    "StorageUnsupported": (503, {"code": "StorageUnsupported", "message": "storage type is unsupported"}),
    "": (500, {"code": "InternalError", "message": "boom"}),
}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_class9_ping_error_samples(c: httpx.Client, name: str) -> None:
    status, body = SAMPLES[name]
    expect(c.get(f"/ping?error={name}"), status, body)


def test_class9_boolean_parameter_text(c: httpx.Client) -> None:
    expect(
        c.get("/images?public=yes"),
        422,
        bad_param("public", 'invalid value for "public" param: "yes" is not a boolean'),
    )
    expect(
        c.get("/images?inclAdminFields=1"),
        422,
        bad_param("inclAdminFields", 'invalid value for "inclAdminFields" param: "1" is not a boolean'),
    )


# --- class 16: Docker/LXD routes check their parameters before the 501 ------------------------------


def test_class16_docker_import_parameters(c: httpx.Client) -> None:
    want = {
        "code": "ValidationFailed",
        "message": "missing parameters",
        "errors": [
            {"field": "repo", "code": "MissingParameter"},
            {"field": "tag", "code": "MissingParameter", "message": 'one of "tag" or "digest" is required'},
        ],
    }
    expect(c.post("/images?action=import-docker-image", json={}), 422, want)
    both = c.post("/images?action=import-docker-image&repo=busybox&tag=1&digest=sha256:00", json={})
    assert both.status_code == 422 and both.json()["errors"][0]["field"] == "digest"
    expect(
        c.post(f"/images?action=import-docker-image&account={LUKE}", json={}),
        403,
        {"code": "OperatorOnly", "message": "this endpoint may only be called by an operator"},
    )


def test_class16_lxd_import_parameters(c: httpx.Client) -> None:
    want = {
        "code": "ValidationFailed",
        "message": "missing parameters",
        "errors": [{"field": "alias", "code": "MissingParameter"}],
    }
    expect(c.post("/images?action=import-lxd-image", json={}), 422, want)
    expect(c.post("/images?action=import-lxd-image&alias=", json={}), 422, want)
    expect(
        c.post("/images?action=import-lxd-image&alias=alpine", json={}),
        422,
        bad_param("alias", "alias must include a semicolon"),
    )


# --- class 17: deep JSON ---------------------------------------------------------------------------


def test_class17_deep_json(c: httpx.Client) -> None:
    r = c.post("/images", content=b"[" * 3000 + b"]" * 3000, headers={"Content-Type": "application/json"})
    expect(r, 400, {"code": "InvalidContent", "message": "Invalid JSON: nested too deeply"})


# --- class 18: GET /state reports the storage types configured --------------------------------------


def test_class18_state_storage_types(c: httpx.Client) -> None:
    r = c.get("/state")
    assert r.status_code == 200 and r.json()["storageTypes"] == ["local"]


def test_class1_empty_public_keeps_the_validation_order(c: httpx.Client) -> None:
    want = bad_param("public", 'invalid value for "public" param: "" is not a boolean')
    expect(c.get("/images?public="), 422, want)
    expect(c.get("/images?public=&sort=bogus&marker=bogus"), 422, want)  # public before sort, marker
    expect(c.get("/images?public=&state=bogus"), 422, bad_param("state", 'invalid state: "bogus"'))
