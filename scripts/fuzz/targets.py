"""Fuzz targets: one function per target taking the fuzzer's bytes; an exception other than the
documented ones (or a failed ``assert``) is a finding.

* ``wire``: :func:`blob_client.wire.decode_write_chunk` against protobuf's own parser of
  ``WriteChunkRequest``. Ours either returns exactly what protobuf returns, or raises
  :class:`~blob_client.wire.WireError` (the documented error) where protobuf refuses too, or on
  the one input class it documents refusing (groups, which proto3 does not have).
* ``validation``: the manifest rules of the catalog (``check_create_body`` + ``build_record`` as
  CreateImage runs them, ``build_record`` for imports, ``apply_update`` for UpdateImage) on JSON
  values built from the bytes. Each either accepts or raises ``ImgapiError`` with a validation code;
  an accepted record validates, serializes and round-trips through JSON.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import atheris
from google.protobuf.message import DecodeError
from imgapi.v1 import blob_pb2

from blob_client.wire import WireError, decode_write_chunk, encode_write_chunk
from catalog_service.domain.config import DomainConfig
from catalog_service.domain.records import build_record, check_create_body
from catalog_service.domain.serialize import compact_json, serialize_image
from catalog_service.domain.update import apply_update
from catalog_service.domain.validation import validate_record
from imgapi_common.errors import ImgapiError

# --- wire -------------------------------------------------------------------------------------------


def _has_group(data: bytes) -> bool:
    """Whether a top-level key uses a group wire type (3, 4): protobuf skips unknown groups, ours
    documents refusing them (proto3 has no groups)."""
    pos = 0
    while pos < len(data):
        key = shift = 0
        while True:
            if pos >= len(data) or shift > 63:
                return False
            b = data[pos]
            pos += 1
            key |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        kind = key & 7
        if kind in (3, 4):
            return True
        if kind == 0:
            while pos < len(data) and data[pos] & 0x80:
                pos += 1
            pos += 1
        elif kind == 1:
            pos += 8
        elif kind == 5:
            pos += 4
        elif kind == 2:
            size = shift = 0
            while True:
                if pos >= len(data) or shift > 63:
                    return False
                b = data[pos]
                pos += 1
                size |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            pos += size
        else:
            return False
    return False


def wire_one(data: bytes) -> None:
    ref = blob_pb2.WriteChunkRequest()
    try:
        ref.ParseFromString(data)
        ref_ok = True
    except DecodeError:
        ref_ok = False
    try:
        ours = decode_write_chunk(data)
    except WireError:
        assert not ref_ok or _has_group(data), f"protobuf accepts, ours refuses: {data!r}"
        return
    assert ref_ok, f"protobuf refuses, ours accepts: {data!r}"
    assert ours.upload_id == ref.upload_id, data
    assert ours.offset == (ref.offset if ref.HasField("offset") else None), data
    assert ours.crc32 == (ref.crc32 if ref.HasField("crc32") else None), data
    assert bytes(ours.data) == ref.data, data


def wire_seeds() -> list[bytes]:
    return [
        b"",
        encode_write_chunk(b"hello", upload_id="u-1", offset=0, crc32=123),
        encode_write_chunk(b"x" * 300, offset=(1 << 62)),
        blob_pb2.WriteChunkRequest(
            upload_id="é", offset=-1, data=b"\x00", crc32=0xFFFFFFFF
        ).SerializeToString(),
        b"\x0a\x00\x10\x00\x1a\x00\x25\x00\x00\x00\x00\x29" + b"\x00" * 8 + b"\x30\x01",
    ]


# --- validation --------------------------------------------------------------------------------------

_KEYS = (
    "v", "uuid", "owner", "name", "version", "description", "homepage", "eula", "icon", "state",
    "error", "disabled", "public", "published_at", "type", "os", "origin", "files", "acl",
    "requirements", "users", "billing_tags", "traits", "tags", "generate_passwords",
    "inherited_directories", "nic_driver", "disk_driver", "cpu_type", "image_size", "channels", "urn",
    "activated", "tags_search", "networks", "brand", "ssh_key", "min_ram", "max_ram", "min_platform",
    "max_platform", "bootrom", "sha1", "size", "compression", "digest", "uncompressedDigest",
    "creator_uuid", "vendor_uuid", "creator_name", "cloud_name", "platform_type", "created_at",
    "updated_at", "restricted_to_uuid", "path", "url", "message", "code", "0", "7.0",
)  # fmt: skip
_STRINGS = (
    "", "true", "false", "null", "0", "-1", "1e400", "NaN", "2", "zvol", "zone-dataset", "lx-dataset",
    "docker", "lxd", "other", "smartos", "linux", "bhyve", "kvm", "bios", "uefi", "gzip", "bzip2",
    "xz", "none", "active", "unactivated", "disabled", "creating", "failed", "dev", "staging",
    "https://example.com/x", "http://a", "ftp://a", "91ba0e64-2547-11e2-a972-df579e5fddb3",
    "00000000-0000-0000-0000-000000000000", "91BA0E64-2547-11E2-A972-DF579E5FDDB3",
    "2013-01-01T00:00:00Z", "2013-01-01T00:00:00.123Z", "20130101T000000Z", "20111231T235959Z",
    "sdc:admin:base:1.0", "~", "!", "a=b", "/x/y.gz", "file.bz2", " ", "\u00e9", "\U0001f600",
)  # fmt: skip
_UUID = "91ba0e64-2547-11e2-a972-df579e5fddb3"
_CONFIGS = (
    DomainConfig(mode="dc", admin_uuid="930896af-bf8c-48d4-885c-6573a94b1853"),
    DomainConfig(mode="public", channels=("dev", "staging")),
    DomainConfig(mode="private"),
    DomainConfig(mode="dc", channels=("dev",)),
)
_BASE = {"name": "base", "version": "1.0", "type": "zone-dataset", "os": "smartos", "owner": _UUID}


def _value(fdp: Any, depth: int) -> Any:
    kind = fdp.ConsumeIntInRange(0, 9 if depth < 5 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return (
            fdp.ConsumeIntInRange(-(1 << 70), 1 << 70) if fdp.ConsumeBool() else fdp.ConsumeIntInRange(-3, 3)
        )
    if kind == 3:
        return fdp.ConsumeRegularFloat()
    if kind == 4:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40))
    if kind == 5:
        return _STRINGS[fdp.ConsumeIntInRange(0, len(_STRINGS) - 1)]
    if kind in (6, 7):
        return [_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    return {_key(fdp): _value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 6))}


def _key(fdp: Any) -> str:
    if fdp.ConsumeIntInRange(0, 7) == 0:
        return str(fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 12)))
    return _KEYS[fdp.ConsumeIntInRange(0, len(_KEYS) - 1)]


def _body(fdp: Any) -> Any:
    """A manifest-like JSON value: mostly an object over the base manifest, sometimes anything."""
    if fdp.ConsumeIntInRange(0, 7) == 0:
        return _value(fdp, 0)
    body: dict[str, Any] = dict(_BASE) if fdp.ConsumeBool() else {}
    for _ in range(fdp.ConsumeIntInRange(0, 8)):
        key = _key(fdp)
        if fdp.ConsumeIntInRange(0, 5) == 0:
            body.pop(key, None)
        else:
            body[key] = _value(fdp, 1)
    return body


def _expected(e: ImgapiError) -> None:
    assert e.code in ("ValidationFailed", "InvalidParameter"), (e.code, e.message)


def _accepted(rec: dict[str, Any], cfg: DomainConfig, *, complete: bool) -> None:
    """Invariants of an accepted record (``complete``: it has all it needs to be stored)."""
    if complete:
        assert validate_record(rec, cfg) == [], (rec, validate_record(rec, cfg))
    text = compact_json(rec)
    assert json.loads(text) is not None
    for include_channels in (False, True):
        view = serialize_image(rec, cfg, include_channels=include_channels, include_admin_fields=True)
        # Rendered as the catalog stores it: a number JavaScript cannot hold (v "1e400" is
        # Number() Infinity, a valid v as in the reference) becomes null, as JSON.stringify writes.
        assert isinstance(json.loads(compact_json(view)), dict)


def validation_one(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    cfg = _CONFIGS[fdp.ConsumeIntInRange(0, len(_CONFIGS) - 1)]
    channels = ["dev"] if cfg.channels_enabled and fdp.ConsumeBool() else None
    account = [None, _UUID, "not-a-uuid"][fdp.ConsumeIntInRange(0, 2)]
    route = fdp.ConsumeIntInRange(0, 2)
    body = _body(fdp)
    # Without channels= on a channel server, the caller adds them before storing.
    complete = channels is not None or not cfg.channels_enabled
    try:
        if route == 0:  # CreateImage
            rec = build_record(
                check_create_body(body, cfg, account=account), cfg, for_import=False, channels=channels
            )
        elif route == 1:  # AdminImportImage
            if not isinstance(body, dict):
                return
            rec = build_record(body, cfg, for_import=True, channels=channels)
        else:  # UpdateImage of a valid stored image
            base = build_record(
                {**_BASE, "public": cfg.mode == "public"},
                cfg,
                for_import=False,
                channels=["dev"] if cfg.channels_enabled else None,
            )
            if fdp.ConsumeBool():
                base.update(activated=True, state="active", published_at="2013-01-01T00:00:00Z")
                base["files"] = [{"sha1": "a" * 40, "size": 1, "compression": "none"}]
            rec = apply_update(base, body, cfg, account=account)
            complete = True
    except ImgapiError as e:
        _expected(e)
        return
    _accepted(rec, cfg, complete=complete)


def validation_seeds() -> list[bytes]:
    return [bytes(range(i, i + 64)) for i in range(0, 192, 16)] + [b"\x00" * 64, b"\xff" * 64]


TARGETS = {"wire": (wire_one, wire_seeds), "validation": (validation_one, validation_seeds)}

if __name__ == "__main__":
    sys.exit("run scripts/fuzz/run")
