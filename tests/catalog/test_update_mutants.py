"""UpdateImage: the exact ``files`` refusals a client sees, and JSON equality across shapes.

Written to kill the mutants scripts/mutation found surviving in the update rules; only public
names are imported.
"""

from __future__ import annotations

from typing import Any

import pytest

from catalog_service.domain.config import DomainConfig
from catalog_service.domain.update import apply_update, json_equal
from imgapi_common.errors import ImgapiError
from tests.catalog.test_domain_update import unactivated

FILE = {"sha1": "a" * 40, "size": 42, "compression": "gzip", "stor": "local"}


def unactivated_image() -> dict[str, Any]:
    return unactivated(files=[dict(FILE)])


@pytest.mark.parametrize(
    "files,message",
    [
        (None, 'only "files[0]" digests can be updated'),
        ([], 'only "files[0]" digests can be updated'),
        (["x"], 'only "files[0]" digests can be updated'),
        (
            [{"digest": "d", "size": 43}],
            'only "digest" and "uncompressedDigest" of files[0] can be updated (size)',
        ),
        ([{"blob": 1}], 'only "digest" and "uncompressedDigest" of files[0] can be updated (blob)'),
    ],
)
def test_files_refusals_name_what_cannot_change(files: Any, message: str) -> None:
    with pytest.raises(ImgapiError) as e:
        apply_update(unactivated_image(), {"files": files}, DomainConfig(), account=None)
    assert e.value.code == "ValidationFailed"
    assert e.value.message == "invalid image update data: files"
    assert [(x.field, x.code, x.message) for x in e.value.errors] == [("files", "NotAllowed", message)]


@pytest.mark.parametrize(
    "a,b",
    [
        ({"a": 1}, ["a"]),
        (["a"], {"0": "a"}),
        ([], ""),
        ("", []),
        ([], {}),
        ({}, None),
        (1, "1"),
        ("1", 1.0),
        ([1], 1),
    ],
)
def test_values_of_different_shapes_are_not_equal(a: Any, b: Any) -> None:
    assert not json_equal(a, b)
    assert not json_equal(b, a)


def test_null_digests_are_removed_and_absent_ones_ignored() -> None:
    image = unactivated_image()
    image["files"][0]["digest"] = "sha256:d"
    body = {"files": [{"digest": None, "uncompressedDigest": None}]}
    new = apply_update(image, body, DomainConfig(), account=None)
    assert new["files"] == [FILE]
    assert image["files"][0]["digest"] == "sha256:d"  # the stored record is untouched


def test_keys_after_files_are_applied_on_an_image_without_a_file() -> None:
    image = unactivated_image()
    del image["files"]
    new = apply_update(image, {"files": [{"digest": "d"}], "name": "bar"}, DomainConfig(), account=None)
    assert new["name"] == "bar" and "files" not in new
