"""Validation of stored records: the two passes, the per-field rules, requirements."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from catalog_service.domain.config import DomainConfig
from catalog_service.domain.requirements import is_platform_stamp
from catalog_service.domain.serialize import compact_json
from catalog_service.domain.validation import image_data_error, validate_record
from imgapi_common.errors import FieldError
from imgapi_common.manifest_fields import COMPRESSIONS, MAX_FILE_SIZE, MAX_ICON_SIZE, OSES, STATES, TYPES
from tests.components import FIXTURES

DC = DomainConfig()
PUBLIC = DomainConfig(mode="public")
PRIVATE = DomainConfig(mode="private")
PUBLIC_CH = DomainConfig(mode="public", channels=("dev", "staging", "release"))
PRIVATE_CH = DomainConfig(mode="private", channels=("dev",))
DC_CH = DomainConfig(mode="dc", channels=("dev",))

OWNER = "91ba0e64-2547-11e2-a972-df579e5fddb3"
UUID = "1fc068b0-13b0-11e2-9f4e-2f3f6a96d9bc"
OTHER = "86055c40-2547-11e2-8a6b-4bb37edc84ba"
DELETE = object()


def record(**overrides: Any) -> dict[str, Any]:
    """A valid unactivated dc-mode zone-dataset record, with overrides (DELETE removes a key)."""
    rec: dict[str, Any] = {
        "uuid": UUID,
        "v": 2,
        "owner": OWNER,
        "name": "base",
        "version": "1.0.0",
        "type": "zone-dataset",
        "os": "smartos",
        "public": False,
        "disabled": False,
        "activated": False,
        "state": "unactivated",
        "acl": [],
    }
    for k, v in overrides.items():
        if v is DELETE:
            rec.pop(k, None)
        else:
            rec[k] = v
    return rec


def active_record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "activated": True,
        "state": "active",
        "published_at": "2012-11-02T22:46:45.992Z",
        "files": [{"sha1": "a" * 40, "size": 42, "compression": "gzip", "stor": "local"}],
    }
    base.update(overrides)
    return record(**base)


def codes(rec: dict[str, Any], cfg: DomainConfig = DC) -> list[tuple[str, str]]:
    return [(e.field, e.code) for e in validate_record(rec, cfg)]


def only_error(rec: dict[str, Any], cfg: DomainConfig = DC) -> FieldError:
    errs = validate_record(rec, cfg)
    assert len(errs) == 1, errs
    return errs[0]


# --- constants ------------------------------------------------------------------------------------


def test_enumerations_and_limits() -> None:
    assert STATES == ("active", "unactivated", "disabled", "creating", "failed")
    assert TYPES == ("zone-dataset", "lx-dataset", "zvol", "docker", "other", "lxd")  # reference order
    assert OSES == ("smartos", "linux", "windows", "bsd", "illumos", "other")
    assert COMPRESSIONS == ("bzip2", "gzip", "xz", "none")
    assert MAX_FILE_SIZE == 21474836480
    assert MAX_ICON_SIZE == 131072


# --- the passes and their order -----------------------------------------------------------------


def test_valid_records() -> None:
    assert validate_record(record(), DC) == []
    assert validate_record(record(), PRIVATE) == []
    assert validate_record(record(public=True), PUBLIC) == []
    assert validate_record(active_record(), DC) == []


def test_pass1_order_of_missing_fields() -> None:
    assert codes({}) == [
        ("v", "MissingParameter"),
        ("uuid", "MissingParameter"),
        ("owner", "MissingParameter"),
        ("name", "MissingParameter"),
        ("version", "MissingParameter"),
        ("disabled", "MissingParameter"),
        ("activated", "MissingParameter"),
        ("public", "MissingParameter"),
        ("state", "MissingParameter"),
        ("type", "MissingParameter"),
        ("os", "MissingParameter"),
    ]


def test_missing_errors_have_no_message() -> None:
    err = only_error(record(name=DELETE))
    assert err == FieldError("name", "MissingParameter")


def test_published_at_and_files_required_only_when_activated() -> None:
    assert codes(record(published_at=DELETE, files=DELETE)) == []
    assert codes(active_record(published_at=DELETE, files=DELETE)) == [
        ("published_at", "MissingParameter"),
        ("files", "MissingParameter"),
    ]
    assert codes(active_record(activated="true", published_at=DELETE)) == [
        ("published_at", "MissingParameter")
    ]
    # a falsy published_at on an activated image is missing too
    assert codes(active_record(published_at="")) == [("published_at", "MissingParameter")]
    assert codes(active_record(published_at=None)) == [("published_at", "MissingParameter")]


def test_zvol_fields_required_only_for_zvol() -> None:
    assert codes(record(type="zvol")) == [
        ("nic_driver", "MissingParameter"),
        ("disk_driver", "MissingParameter"),
        ("cpu_type", "MissingParameter"),
        ("image_size", "MissingParameter"),
    ]
    zvol = record(type="zvol", nic_driver="virtio", disk_driver="virtio", cpu_type="host", image_size=10240)
    assert codes(zvol) == []


def test_pass1_errors_precede_pass2_errors() -> None:
    rec = record(description=True, name=7, tags=None, os="beos", homepage="ftp://x")
    assert [f for f, _ in codes(rec)] == ["name", "os", "description", "homepage", "tags"]


def test_pass2_order() -> None:
    rec = record(
        inherited_directories=5,
        generate_passwords="yes",
        tags=[],
        traits=None,
        billing_tags=[1],
        users="x",
        requirements=None,
        acl=None,
        error="x",
        origin="x",
        eula="x",
        homepage="x",
        description=True,
    )
    assert [f for f, _ in codes(rec)] == [
        "description",
        "homepage",
        "eula",
        "origin",
        "error",
        "acl",
        "requirements",
        "users",
        "billing_tags",
        "traits",
        "tags",
        "generate_passwords",
        "inherited_directories",
    ]


def test_pre_checks_precede_both_passes() -> None:
    rec = record(icon=True, tags_search="x", name=DELETE, description=True)
    assert codes(rec) == [
        ("tags", "Invalid"),
        ("icon", "Invalid"),
        ("name", "MissingParameter"),
        ("description", "Invalid"),
    ]


def test_unknown_and_internal_keys_are_ignored_by_validation() -> None:
    rec = record(objectclass="sdcimage", urn=12, expires_at="2030-01-01T00:00:00.000Z", blob_id="x")
    assert validate_record(rec, DC) == []


def test_image_data_error_message() -> None:
    errs = validate_record(record(name="bad name!", os="beos"), DC)
    exc = image_data_error(errs)
    assert exc.code == "ValidationFailed"
    assert exc.http_status == 422
    assert exc.message == "invalid image data: name, os"
    assert exc.body()["errors"] == [
        {
            "field": "name",
            "code": "Invalid",
            "message": 'image name has invalid characters (only alpha-numeric characters and " ", ".", '
            '"-", "_" and "/" are allowed)',
        },
        {
            "field": "os",
            "code": "Invalid",
            "message": 'invalid image os, "beos", must be one of: '
            "smartos, linux, windows, bsd, illumos, other",
        },
    ]


# --- dc minimal list for placeholders -------------------------------------------------------------


def placeholder(state: str = "creating") -> dict[str, Any]:
    return {
        "v": 2,
        "uuid": UUID,
        "name": "img",
        "version": "1",
        "type": "null",
        "os": "null",
        "state": state,
        "expires_at": "2030-01-01T00:00:00.000Z",
    }


def test_creating_placeholder_uses_minimal_list_in_dc_mode() -> None:
    assert validate_record(placeholder(), DC) == []
    assert codes({"state": "creating"}) == [
        ("v", "MissingParameter"),
        ("uuid", "MissingParameter"),
        ("name", "MissingParameter"),
        ("version", "MissingParameter"),
        ("type", "MissingParameter"),
        ("os", "MissingParameter"),
    ]
    # pass 2 still applies
    assert codes({**placeholder(), "acl": "bad"}) == [("acl", "Invalid")]


def test_creating_placeholder_is_not_minimal_outside_dc() -> None:
    fields = [f for f, _ in codes(placeholder(), PRIVATE)]
    assert fields == ["owner", "disabled", "activated", "public"]


def test_failed_placeholder_uses_full_list_but_null_type_allowed() -> None:
    rec = {**placeholder("failed"), "owner": OWNER, "disabled": False, "activated": False, "public": False}
    rec["error"] = {"message": "boom"}
    assert validate_record(rec, DC) == []
    assert codes({**rec, "state": "unactivated"}) == [("type", "Invalid"), ("os", "Invalid")]


# --- modes and public ---------------------------------------------------------------------------


def test_public_mode_requires_public_true() -> None:
    err = only_error(record(public=False), PUBLIC)
    assert err == FieldError("public", "Invalid", "private images are not allowed on a public Images API")
    assert validate_record(record(public="true"), PUBLIC) == []
    assert only_error(record(public="false"), PUBLIC).field == "public"


def test_private_mode_requires_public_false() -> None:
    err = only_error(record(public=True), PRIVATE)
    assert err.field == "public" and err.code == "Invalid"
    assert err.message == "public images are not allowed on a private Images API"
    assert validate_record(record(public="false"), PRIVATE) == []


def test_dc_mode_accepts_either_public_value() -> None:
    for value in (True, False, "true", "false"):
        assert validate_record(record(public=value), DC) == []


@pytest.mark.parametrize("cfg", [DC, PUBLIC, PRIVATE])
def test_public_not_boolish_reports_conversion_error(cfg: DomainConfig) -> None:
    err = only_error(record(public="yes"), cfg)
    assert err.field == "public" and err.code == "Invalid"
    assert err.message is not None and "not a boolean" in err.message and '"yes"' in err.message


def test_public_missing() -> None:
    assert codes(record(public=DELETE), PUBLIC) == [("public", "MissingParameter")]


# --- channels -------------------------------------------------------------------------------------


def test_channels_required_on_channel_server() -> None:
    assert codes(record(public=True), PUBLIC_CH) == [("channels", "MissingParameter")]
    assert validate_record(record(public=True, channels=["dev"]), PUBLIC_CH) == []
    assert codes(record(), PRIVATE_CH) == [("channels", "MissingParameter")]


def test_channels_is_last_of_pass1() -> None:
    rec = record(public=True, os="beos", description=True)
    assert codes(rec, PUBLIC_CH) == [
        ("os", "Invalid"),
        ("channels", "MissingParameter"),
        ("description", "Invalid"),
    ]


def test_channels_membership_not_checked_but_type_is() -> None:
    assert validate_record(record(public=True, channels=["nope"]), PUBLIC_CH) == []
    assert validate_record(record(public=True, channels=[]), PUBLIC_CH) == []
    assert codes(record(public=True, channels="dev"), PUBLIC_CH) == [("channels", "Invalid")]
    assert codes(record(public=True, channels=[1]), PUBLIC_CH) == [("channels", "Invalid")]
    assert codes(record(public=True, channels=None), PUBLIC_CH) == [("channels", "Invalid")]


@pytest.mark.parametrize("cfg", [DC, PUBLIC, PRIVATE, DC_CH])
def test_any_channels_invalid_without_channels(cfg: DomainConfig) -> None:
    rec = record(public=cfg.mode == "public", channels=["dev"])
    assert codes(rec, cfg) == [("channels", "Invalid")]
    rec["channels"] = []
    assert codes(rec, cfg) == [("channels", "Invalid")]


def test_channels_checked_in_pass2_position_without_channels() -> None:
    rec = record(channels=["dev"], inherited_directories=5, description=True)
    assert [f for f, _ in codes(rec)] == ["description", "inherited_directories", "channels"]


# --- per-field rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (2, True),
        (1, True),
        (0, True),
        ("2", True),
        (2.0, True),
        (-1, False),
        ("-1", False),
        ("abc", False),
        ("", True),  # Number("") === 0
        (None, True),  # Number(null) === 0
        (True, True),  # Number(true) === 1
        ([2], True),  # Number([2]) === 2
        ([], True),
        ({}, False),
        (math.nan, False),
        (math.inf, True),  # not NaN, not negative
    ],
)
def test_v(value: Any, ok: bool) -> None:
    assert codes(record(v=value)) == ([] if ok else [("v", "Invalid")])


@pytest.mark.parametrize("field", ["uuid", "owner", "origin"])
@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (OTHER, True),
        (OTHER.upper(), False),
        ("not-a-uuid", False),
        ("", False),
        (None, False),
        (5, False),
    ],
)
def test_uuid_fields(field: str, value: Any, ok: bool) -> None:
    assert codes(record(**{field: value})) == ([] if ok else [(field, "Invalid")])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("base-64 lts/edge_1.0", None),
        ("a" * 1024, None),
        ("a" * 1025, "image name is too long (max 1024 characters)"),
        ("é" * 1025, "image name is too long (max 1024 characters)"),
        ("😀" * 513, "image name is too long (max 1024 characters)"),  # 1026 UTF-16 units
        ("bad!", "invalid characters"),
        ("", "invalid characters"),
        ("tab\there", "invalid characters"),
        ("nul\x00", "invalid characters"),
        ("trailing\n", "invalid characters"),
        ("quote'", "invalid characters"),
        ("plus+", "invalid characters"),
        ("ünïcode", "invalid characters"),
        (5, "must be a string"),
        (None, "must be a string"),
        (["base"], "must be a string"),
    ],
)
def test_name(value: Any, message: str | None) -> None:
    errs = validate_record(record(name=value), DC)
    if message is None:
        assert errs == []
    else:
        assert len(errs) == 1 and errs[0].field == "name" and errs[0].code == "Invalid"
        assert errs[0].message is not None and message in errs[0].message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1.0.0+build/2_x-y", None),
        ("v" * 512, None),
        ("v" * 513, "too long"),
        ("1 0", "invalid characters"),
        ("", "invalid characters"),
        ("1.0!", "invalid characters"),
        ("1.0\x00", "invalid characters"),
        (1.0, None),  # a number: its text "1" matches the pattern
        (True, "must be a string"),
        (None, "must be a string"),
    ],
)
def test_version(value: Any, message: str | None) -> None:
    errs = validate_record(record(version=value), DC)
    if message is None:
        assert errs == []
    else:
        assert len(errs) == 1 and errs[0].field == "version" and errs[0].code == "Invalid"
        assert errs[0].message is not None and message in errs[0].message


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("d" * 10240, True),
        ("", True),
        ("d" * 10241, False),
        ("😀" * 5121, False),
        (5, True),
        (True, False),
        (None, False),
    ],
)
def test_description(value: Any, ok: bool) -> None:
    assert codes(record(description=value)) == ([] if ok else [("description", "Invalid")])


@pytest.mark.parametrize("field", ["homepage", "eula"])
@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("http://example.com", True),
        ("https://example.com/x?y=z", True),
        ("HTTPS://EXAMPLE.COM", True),
        ("Http://x", True),
        ("http://" + "x" * (1024 - 7), True),
        ("http://" + "x" * (1025 - 7), False),
        ("ftp://example.com", False),
        ("example.com", False),
        ("mailto:me@example.com", False),
        ("", False),
        (5, False),
        (None, False),
    ],
)
def test_urls(field: str, value: Any, ok: bool) -> None:
    assert codes(record(**{field: value})) == ([] if ok else [(field, "Invalid")])


@pytest.mark.parametrize("field", ["disabled", "activated", "generate_passwords"])
@pytest.mark.parametrize(
    ("value", "ok"),
    [(True, True), (False, True), ("true", True), ("false", True), ("yes", False), (1, False), (None, False)],
)
def test_boolish_fields(field: str, value: Any, ok: bool) -> None:
    rec = record(**{field: value})
    if field == "activated" and value in (True, "true"):
        rec.update(
            published_at="2012-11-02T22:46:45.992Z", files=[{"sha1": "a", "size": 1, "compression": "none"}]
        )
    assert codes(rec) == ([] if ok else [(field, "Invalid")])
    if not ok:
        message = validate_record(rec, DC)[0].message
        assert message is not None and "not a boolean" in message


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2012-11-02T22:46:45.992Z", True),
        ("2012-11-02T22:46:45Z", True),
        ("2018-01-04T11:35:37Z", True),
        ("2012-11-02T22:46:45.99Z", False),
        ("2012-11-02T22:46:45.9921Z", False),
        ("2012-11-02T22:46Z", False),
        ("2012-11-02T22:46:45.992+00:00", False),
        ("2012-11-02 22:46:45.992Z", False),
        ("2012-11-02T22:46:45.992z", False),
        ("2012-11-02T22:46:45.992Z\n", False),
        ("\uff12\uff10\uff11\uff12-11-02T22:46:45.992Z", False),
        (20121102, False),
        ("", True),  # falsy: not checked (not activated)
        (None, True),
        (0, True),
    ],
)
def test_published_at(value: Any, ok: bool) -> None:
    assert codes(record(published_at=value)) == ([] if ok else [("published_at", "Invalid")])


@pytest.mark.parametrize("value", STATES)
def test_state_enum_ok(value: str) -> None:
    rec = record(state=value)
    if value == "creating":
        assert validate_record(rec, DC) == []
    else:
        assert validate_record(rec, PRIVATE) == []


@pytest.mark.parametrize("value", ["bogus", "Active", "", None, 1])
def test_state_enum_bad(value: Any) -> None:
    assert codes(record(state=value)) == [("state", "Invalid")]


@pytest.mark.parametrize("value", TYPES)
def test_type_enum_ok(value: str) -> None:
    rec = record(type=value)
    if value == "zvol":
        rec.update(nic_driver="virtio", disk_driver="virtio", cpu_type="host", image_size=1)
    assert validate_record(rec, DC) == []


@pytest.mark.parametrize("value", ["vm", "ZVOL", "null", "", None])
def test_type_enum_bad(value: Any) -> None:
    err = only_error(record(type=value))
    assert err.field == "type" and err.code == "Invalid"
    assert (
        err.message is not None
        and "must be one of: zone-dataset, lx-dataset, zvol, docker, other, lxd" in (err.message)
    )


@pytest.mark.parametrize("value", OSES)
def test_os_enum_ok(value: str) -> None:
    assert validate_record(record(os=value), DC) == []


@pytest.mark.parametrize("value", ["beos", "SmartOS", "null", "", None])
def test_os_enum_bad(value: Any) -> None:
    assert codes(record(os=value)) == [("os", "Invalid")]


@pytest.mark.parametrize("state", ["creating", "failed"])
def test_null_type_and_os_allowed_for_placeholders(state: str) -> None:
    assert validate_record(record(state=state, type="null", os="null"), PRIVATE) == []


@pytest.mark.parametrize("field", ["nic_driver", "disk_driver", "cpu_type"])
def test_zvol_string_fields(field: str) -> None:
    zvol = {
        "type": "zvol",
        "nic_driver": "virtio",
        "disk_driver": "virtio",
        "cpu_type": "host",
        "image_size": 1,
    }
    assert codes(record(**{**zvol, field: "x"})) == []
    assert codes(record(**{**zvol, field: ""})) == []
    assert codes(record(**{**zvol, field: None})) == [(field, "Invalid")]
    assert codes(record(**{**zvol, field: 5})) == [(field, "Invalid")]
    # non-zvol: truthy -> Invalid; empty string passes; null fails (not a string)
    assert codes(record(**{field: "virtio"})) == [(field, "Invalid")]
    assert codes(record(**{field: ""})) == []
    assert codes(record(**{field: None})) == [(field, "Invalid")]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (16384, True),
        (16384.0, True),
        ("16384", True),
        (0, True),
        (-5, True),  # not rejected by the reference
        (1.5, False),
        ("abc", False),
        (math.nan, False),
        (math.inf, False),
        ({}, False),
    ],
)
def test_image_size_zvol(value: Any, ok: bool) -> None:
    rec = record(type="zvol", nic_driver="virtio", disk_driver="virtio", cpu_type="host", image_size=value)
    assert codes(rec) == ([] if ok else [("image_size", "Invalid")])


def test_image_size_non_zvol() -> None:
    assert codes(record(image_size=1024)) == [("image_size", "Invalid")]
    assert codes(record(image_size=0)) == []
    assert codes(record(image_size=math.nan)) == [("image_size", "Invalid")]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ({"message": "boom"}, True),
        ({}, True),
        ([], True),
        (None, True),
        ("boom", False),
        (5, False),
        (True, False),
    ],
)
def test_error(value: Any, ok: bool) -> None:
    assert codes(record(error=value)) == ([] if ok else [("error", "Invalid")])


FILE = {"sha1": "a" * 40, "size": 42, "compression": "gzip"}


@pytest.mark.parametrize(
    ("type_", "files", "expected"),
    [
        ("zone-dataset", [], []),
        ("zone-dataset", [FILE], []),
        ("zone-dataset", [FILE, FILE], [("files", "Invalid")]),
        ("lxd", [FILE, FILE], []),
        ("lxd", [FILE, FILE, FILE], [("files", "Invalid")]),
        ("zone-dataset", [{**FILE, "sha1": ""}], [("files", "Invalid")]),
        ("zone-dataset", [{**FILE, "size": 0}], [("files", "Invalid")]),
        ("zone-dataset", [{"sha1": "a", "size": 1}], [("files", "Invalid")]),
        ("zone-dataset", [{**FILE, "compression": "lzma"}], [("files", "Invalid")]),
        ("zone-dataset", [{}], [("files", "Invalid")] * 3),
        ("zone-dataset", ["x"], [("files", "Invalid")] * 3),
        ("zone-dataset", "x", [("files", "Invalid")]),
        ("zone-dataset", None, [("files", "Invalid")]),
    ],
)
def test_files(type_: str, files: Any, expected: list[tuple[str, str]]) -> None:
    assert codes(record(type=type_, files=files), PRIVATE) == expected


def test_files_too_many_message() -> None:
    err = only_error(record(files=[FILE, FILE]))
    assert err.message is not None and "too many files" in err.message


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_files_compressions(compression: str) -> None:
    assert validate_record(record(files=[{**FILE, "compression": compression}]), DC) == []


def test_icon_pre_check() -> None:
    full = {"sha1": "b" * 40, "size": 4, "contentMD5": "x==", "contentType": "image/png", "mtime": "t"}
    assert validate_record(record(icon=full), DC) == []
    err = only_error(record(icon=True))
    assert err.field == "icon" and err.code == "Invalid"
    assert err.message is not None and "contentMD5" in err.message
    for missing in ("contentMD5", "size", "contentType"):
        err = only_error(record(icon={k: v for k, v in full.items() if k != missing}))
        assert err.message is not None and f'"{missing}"' in err.message
    # missing contentMD5 is reported first (one error only)
    assert codes(record(icon={"sha1": "x"})) == [("icon", "Invalid")]
    assert only_error(record(icon="x")).field == "icon"
    # a falsy icon is ignored
    for falsy in (False, None, 0, ""):
        assert validate_record(record(icon=falsy), DC) == []


def test_tags_search_pre_check() -> None:
    assert validate_record(record(tags={"a": 1}, tags_search=["a=1"]), DC) == []
    assert validate_record(record(tags_search=[]), DC) == []
    assert validate_record(record(tags_search=None), DC) == []
    err = only_error(record(tags_search="a=1"))
    assert err.field == "tags" and err.code == "Invalid"
    assert only_error(record(tags_search={"a": 1})).field == "tags"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ([], True),
        ([OWNER], True),
        ([OWNER, OTHER], True),
        (OWNER, True),  # bare string tolerated (normalized)
        ("nope", False),
        ([OWNER, "nope"], False),
        (None, False),
        ({}, False),
        ([OWNER.upper()], False),
    ],
)
def test_acl(value: Any, ok: bool) -> None:
    assert codes(record(acl=value)) == ([] if ok else [("acl", "Invalid")])


def test_acl_stops_at_first_bad_item_and_names_its_index() -> None:
    err = only_error(record(acl=[OWNER, "bad1", "bad2"]))
    assert err.message is not None and "1" in err.message and "bad1" in err.message
    assert "bad2" not in err.message


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (["promo"], True),
        ("promo", True),
        (["x" * 128], True),
        (["x" * 129], False),
        ([5], False),
        (["ok", None], False),
        ({"a": 1}, False),
        (5, False),
        ([], True),
        (None, True),  # falsy: not validated (nor shown)
        ("", True),
    ],
)
def test_billing_tags(value: Any, ok: bool) -> None:
    assert codes(record(billing_tags=value)) == ([] if ok else [("billing_tags", "Invalid")])


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ([], True),
        ([{"name": "root"}, {"name": "admin"}], True),
        ([{"name": "root", "uid": 0}], False),
        ([{}], False),
        (["root"], False),
        ({"name": "root"}, False),
        (None, False),
    ],
)
def test_users(value: Any, ok: bool) -> None:
    assert codes(record(users=value)) == ([] if ok else [("users", "Invalid")])


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ({}, True),
        ({"a": "b", "c": True, "d": [1, {"x": None}], "e": False}, True),
        ({"a": 1}, False),
        ({"a": None}, False),
        ({"a": {}}, False),
        (None, False),
        ([], True),  # an array is an object to the reference (its keys are indexes)
        (["a", True], True),
        ([1], False),
        ("x", False),
    ],
)
def test_traits(value: Any, ok: bool) -> None:
    assert codes(record(traits=value)) == ([] if ok else [("traits", "Invalid")])


def test_tags_values_may_be_any_json() -> None:
    tags = {"s": "x", "n": 1, "f": 1.5, "b": True, "z": None, "o": {"a": [1]}, "l": [1, "2"]}
    assert validate_record(record(tags=tags), DC) == []
    assert validate_record(record(tags={}), DC) == []


@pytest.mark.parametrize("value", [None, [], ["a"], "x", 5, True])
def test_tags_must_be_object(value: Any) -> None:
    assert codes(record(tags=value)) == [("tags", "Invalid")]


def test_tags_size_limit() -> None:
    overhead = len(compact_json({"k": ""}))
    ok = {"k": "x" * (102400 - overhead)}
    assert len(compact_json(ok)) == 102400
    assert validate_record(record(tags=ok), DC) == []
    too_big = {"k": "x" * (102400 - overhead + 1)}
    assert codes(record(tags=too_big)) == [("tags", "Invalid")]
    # astral characters count as two (JavaScript string length)
    astral = {"k": "😀" * ((102400 - overhead) // 2 + 1)}
    assert codes(record(tags=astral)) == [("tags", "Invalid")]


@pytest.mark.parametrize(
    ("type_", "value", "ok"),
    [
        ("zone-dataset", ["/opt"], True),
        ("zone-dataset", [], True),
        ("zone-dataset", [1], False),
        ("zone-dataset", "/opt", False),
        ("zone-dataset", None, False),
        ("lx-dataset", ["/opt"], False),
        ("other", [], False),
    ],
)
def test_inherited_directories(type_: str, value: Any, ok: bool) -> None:
    expected = [] if ok else [("inherited_directories", "Invalid")]
    assert codes(record(type=type_, inherited_directories=value)) == expected


# --- requirements -------------------------------------------------------------------------------


def req_codes(reqs: Any) -> list[tuple[str, str]]:
    return codes(record(requirements=reqs))


def test_requirements_must_be_object() -> None:
    assert req_codes(None) == [("requirements", "Invalid")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # the reference iterates the keys of a copy: scalars have none, strings and arrays indexes
        (5, []),
        (True, []),
        ([], []),
        ("xy", [("0", "Invalid"), ("1", "Invalid")]),
        (["a"], [("0", "Invalid")]),
    ],
)
def test_requirements_coercions(value: Any, expected: list[tuple[str, str]]) -> None:
    assert req_codes(value) == expected


def test_requirements_empty_and_full() -> None:
    assert req_codes({}) == []
    full = {
        "networks": [{"name": "net0", "description": "public"}],
        "brand": "bhyve",
        "ssh_key": True,
        "min_ram": 512,
        "max_ram": 1024,
        "min_platform": {"7.0": "20141030T081701Z"},
        "max_platform": {"7.0": "20991231T235959Z", "6.5": "20120101T000000Z"},
        "bootrom": "uefi",
    }
    assert req_codes(full) == []


def test_unsupported_requirement_uses_bare_key() -> None:
    err = only_error(record(requirements={"cpu": 4}))
    assert err == FieldError("cpu", "Invalid", 'unsupported requirement "cpu"')
    assert req_codes({"a": 1, "brand": 5, "b": 2}) == [  # unknown keys are reported last
        ("requirements.brand", "Invalid"),
        ("a", "Invalid"),
        ("b", "Invalid"),
    ]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ([{"name": "net0", "description": "public"}], True),
        ([{"description": "public", "name": "net0"}], True),
        ([], True),
        ([{"name": "net0"}], False),
        ([{"name": "net0", "description": "d", "x": 1}], False),
        (["net0"], False),
        ({"name": "net0", "description": "d"}, False),
        ("net0", False),
        (None, True),  # falsy: skipped
    ],
)
def test_requirements_networks(value: Any, ok: bool) -> None:
    assert req_codes({"networks": value}) == ([] if ok else [("requirements.networks", "Invalid")])


@pytest.mark.parametrize(
    ("value", "ok"), [("joyent", True), ("lx", True), (5, False), (["kvm"], False), ("", True)]
)
def test_requirements_brand(value: Any, ok: bool) -> None:
    assert req_codes({"brand": value}) == ([] if ok else [("requirements.brand", "Invalid")])


@pytest.mark.parametrize(
    ("value", "ok"),
    [(True, True), (False, True), ("true", False), (1, False), ("false", False), (None, True)],
)
def test_requirements_ssh_key(value: Any, ok: bool) -> None:
    assert req_codes({"ssh_key": value}) == ([] if ok else [("requirements.ssh_key", "Invalid")])


@pytest.mark.parametrize("key", ["min_ram", "max_ram"])
@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (512, True),
        (512.0, True),
        (-5, True),
        (0, True),
        ("512", False),
        (1.5, False),
        (True, False),
        ([1], False),
    ],
)
def test_requirements_ram_integer(key: str, value: Any, ok: bool) -> None:
    assert req_codes({key: value}) == ([] if ok else [(f"requirements.{key}", "Invalid")])


def test_requirements_ram_order() -> None:
    assert req_codes({"min_ram": 512, "max_ram": 512}) == []
    assert req_codes({"min_ram": 1024, "max_ram": 512}) == [("requirements.max_ram", "Invalid")]
    assert req_codes({"max_ram": 512, "min_ram": 1024}) == [("requirements.max_ram", "Invalid")]
    # only compared when both are valid and truthy
    assert req_codes({"min_ram": "x", "max_ram": 512}) == [("requirements.min_ram", "Invalid")]
    assert req_codes({"min_ram": 0, "max_ram": -1}) == []


@pytest.mark.parametrize(
    ("stamp", "ok"),
    [
        ("20141030T081701Z", True),
        ("20120101T000000Z", True),
        ("20991231T235959Z", True),
        ("20111231T235959Z", False),  # year < 2012
        ("20141330T081701Z", False),  # month 13
        ("20140030T081701Z", False),  # month 00
        ("20141032T081701Z", False),  # day 32
        ("20141000T081701Z", False),  # day 00
        ("20141030T241701Z", False),  # hour 24
        ("20141030T086001Z", False),  # minute 60
        ("20141030T081760Z", False),  # second 60
        ("20141030X081701Z", False),
        ("20141030T081701", False),
        ("20141030T081701ZZ", False),
        ("2014-10-30T08:17Z", False),
        ("\uff12\uff10\uff11\uff141030T081701Z", False),
        (20141030, False),
        (None, False),
    ],
)
def test_platform_stamp(stamp: Any, ok: bool) -> None:
    assert is_platform_stamp(stamp) is ok


@pytest.mark.parametrize("key", ["min_platform", "max_platform"])
def test_requirements_platforms(key: str) -> None:
    field = f"requirements.{key}"
    assert req_codes({key: {"7.0": "20141030T081701Z"}}) == []
    assert req_codes({key: {}}) == [(field, "Invalid")]
    assert req_codes({key: "20141030T081701Z"}) == [(field, "Invalid")]
    assert req_codes({key: ["20141030T081701Z"]}) == []  # an array is an object keyed by index
    assert req_codes({key: ["bad"]}) == [(field, "Invalid")]
    assert req_codes({key: {"7.0": "bad", "6.5": "20141030T081701Z", "7.1": "20111030T081701Z"}}) == [
        (field, "Invalid"),
        (field, "Invalid"),
    ]
    assert req_codes({key: None}) == []


def test_requirements_bootrom() -> None:
    assert req_codes({"brand": "bhyve", "bootrom": "bios"}) == []
    assert req_codes({"brand": "bhyve", "bootrom": "uefi"}) == []
    assert req_codes({"bootrom": "bios"}) == [("requirements.bootrom", "MissingParameter")]
    assert req_codes({"brand": "kvm", "bootrom": "bios"}) == [("requirements.bootrom", "Invalid")]
    assert req_codes({"brand": "bhyve", "bootrom": "coreboot"}) == [("requirements.bootrom", "Invalid")]
    assert req_codes({"brand": "bhyve", "bootrom": ""}) == []


# --- fixtures -------------------------------------------------------------------------------------


def load(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((FIXTURES / name).read_text())
    return data


def test_dc_test_images_valid_in_dc_mode() -> None:
    for rec in load("dc-test-images.json"):
        assert validate_record(rec, DC) == [], rec["uuid"]


def test_dc_test_images_in_public_and_private_modes() -> None:
    for rec in load("dc-test-images.json"):
        public = rec["public"] is True
        assert (validate_record(rec, PUBLIC) == []) is public
        assert (validate_record(rec, PRIVATE) == []) is (not public)


def test_public_test_images_on_channel_server() -> None:
    recs = {r["name"]: r for r in load("public-test-images.json")}
    assert codes(recs["innochan"], PUBLIC_CH) == [("channels", "MissingParameter")]
    for name in ("indevchan", "instagingchan", "inmultichan"):
        assert validate_record(recs[name], PUBLIC_CH) == [], name


def test_public_test_images_without_channels_configured() -> None:
    recs = {r["name"]: r for r in load("public-test-images.json")}
    assert validate_record(recs["innochan"], PUBLIC) == []
    for name in ("indevchan", "instagingchan", "inmultichan"):
        assert codes(recs[name], PUBLIC) == [("channels", "Invalid")]
        assert codes(recs[name], DC) == [("channels", "Invalid")]


def test_validation_does_not_mutate() -> None:
    rec = record(acl=OWNER, billing_tags="x")
    snapshot = json.loads(json.dumps(rec))
    validate_record(rec, DC)
    assert rec == snapshot
