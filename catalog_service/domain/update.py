"""UpdateImage rules: which keys a caller may change, the merge into the stored record, and its
re-validation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from catalog_service.domain.config import DomainConfig
from catalog_service.domain.records import normalize_record, tags_search_array
from catalog_service.domain.validation import image_data_error, validate_record
from imgapi_common.errors import FieldError, validation_failed
from imgapi_common.jsvalues import boolish, copy_json
from imgapi_common.manifest_fields import OPERATOR_ONLY_FIELDS, USER_UPDATABLE_FIELDS

#: Keys a user (``account`` given) may update.
USER_UPDATABLE = frozenset(USER_UPDATABLE_FIELDS)
#: Operator-only keys, in the order they are checked.
OPERATOR_ONLY = OPERATOR_ONLY_FIELDS
#: Operator-only keys that additionally need an unactivated image.
UNACTIVATED_ONLY = frozenset({"files", "origin", "uuid"})
#: The only keys of ``files[0]`` an update may change.
FILE_DIGEST_KEYS = ("digest", "uncompressedDigest")

MSG_NOT_UPDATABLE = "Parameter cannot be updated"
MSG_OPERATORS_ONLY = "Can only be updated by operators"
MSG_UNACTIVATED_ONLY = "Can only be updated on unactivated images"


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values (booleans are not numbers, ``1 == 1.0``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _body_as_object(body: Any) -> dict[str, Any]:
    if isinstance(body, Mapping):
        return dict(body)
    if isinstance(body, list):
        # An array is an object to the reference: its keys are "0", "1", ...
        return {str(i): v for i, v in enumerate(body)}
    raise validation_failed("missing request body", [FieldError("body", "MissingParameter")])


def _files_error(rec: Mapping[str, Any], given: Any) -> FieldError | None:
    current = rec.get("files")
    if not (isinstance(given, list) and given and isinstance(given[0], Mapping)):
        return FieldError("files", "NotAllowed", 'only "files[0]" digests can be updated')
    if not (isinstance(current, list) and current and isinstance(current[0], Mapping)):
        return None  # nothing to compare with: the reference accepts it, and the merge ignores it
    old = current[0]
    for key, value in given[0].items():
        if key not in FILE_DIGEST_KEYS and not (key in old and json_equal(old[key], value)):
            return FieldError(
                "files",
                "NotAllowed",
                f'only "digest" and "uncompressedDigest" of files[0] can be updated ({key})',
            )
    return None


def check_update_keys(
    rec: Mapping[str, Any], body: Mapping[str, Any], *, account: str | None
) -> list[FieldError]:
    """Step 3: the key errors of an update body (body order first, then operator-only keys)."""
    errs: list[FieldError] = []
    for key in body:
        if key not in USER_UPDATABLE and key not in OPERATOR_ONLY:
            errs.append(FieldError(key, "NotAllowed", MSG_NOT_UPDATABLE))
    activated = boolish(rec.get("activated")) is True
    for key in OPERATOR_ONLY:
        if key not in body:
            continue
        if account is not None:
            errs.append(FieldError(key, "NotAllowed", MSG_OPERATORS_ONLY))
        elif key in UNACTIVATED_ONLY and activated:
            errs.append(FieldError(key, "NotAllowed", MSG_UNACTIVATED_ONLY))
        elif key == "files":
            err = _files_error(rec, body["files"])
            if err is not None:
                errs.append(err)
    return errs


def merge_update(rec: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """Step 4: the merged record (a new dict). ``null`` deletes; ``tags`` replaces the tags and
    their search array (``tags: null`` only drops the search array, a reference quirk); ``files``
    only updates the digests of ``files[0]``."""
    new = copy_json(dict(rec))  # parsed JSON values: plain dicts and lists
    for key, value in body.items():
        value = copy_json(value)
        if key == "files":
            if value is None:
                new.pop("files", None)
                continue
            current = new.get("files")
            if not (isinstance(current, list) and current and isinstance(current[0], dict)):
                continue  # an image without a file: nothing to update
            target = current[0]
            for dkey in FILE_DIGEST_KEYS:
                if dkey in value[0]:
                    if value[0][dkey] is None:
                        target.pop(dkey, None)
                    else:
                        target[dkey] = value[0][dkey]
        elif key == "tags":
            if value is None:
                new.pop("tags_search", None)
            else:
                new["tags"] = value
                new["tags_search"] = tags_search_array(value)
        elif value is None:
            new.pop(key, None)
        else:  # (an image_size string is stored as given, like the reference: only checked)
            new[key] = value
    return normalize_record(new)


def apply_update(
    rec: Mapping[str, Any], body: Any, cfg: DomainConfig, *, account: str | None
) -> dict[str, Any]:
    """UpdateImage steps 1-5: the new merged record, or ``ValidationFailed``. ``rec`` is untouched.

    The uuid-change conflict and owner existence are the caller's job.
    """
    data = _body_as_object(body)
    if not data:
        raise validation_failed("invalid image update data: no parameters provided", [])
    errs = check_update_keys(rec, data, account=account)
    if errs:
        raise validation_failed("invalid image update data: " + ", ".join(e.field for e in errs), errs)
    new = merge_update(rec, data)
    errs = validate_record(new, cfg)
    if errs:
        raise image_data_error(errs)
    return new
