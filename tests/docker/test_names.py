"""Repository-string parsing and layer UUIDs (pure functions of the engine)."""

from __future__ import annotations

import pytest

from imgapi_common.errors import ImgapiError
from replication.domain.docker.layers import layer_uuid, published_at, short_id
from replication.domain.docker.reference import ReferenceError, parse_reference, parse_repository

D1 = "sha256:34e9fe7d5febcf82e90c93224efe05de63008e789ce35f12f4f252629cee9a75"
D2 = "sha256:82ad37bf022358325249df3f8001c61149e4c5c2b1feac48cc7b2ff18e023256"


@pytest.mark.parametrize(
    ("arg", "index", "remote", "local", "canonical"),
    [
        ("busybox", "docker.io", "library/busybox", "busybox", "docker.io/busybox"),
        ("library/busybox", "docker.io", "library/busybox", "busybox", "docker.io/busybox"),
        ("docker.io/busybox", "docker.io", "library/busybox", "busybox", "docker.io/busybox"),
        ("index.docker.io/library/busybox", "docker.io", "library/busybox", "busybox", "docker.io/busybox"),
        ("trentm/busybox", "docker.io", "trentm/busybox", "trentm/busybox", "docker.io/trentm/busybox"),
        (
            "docker.io/trentm/busybox",
            "docker.io",
            "trentm/busybox",
            "trentm/busybox",
            "docker.io/trentm/busybox",
        ),
        ("myhost/foo", "docker.io", "myhost/foo", "myhost/foo", "docker.io/myhost/foo"),
        ("quay.io/coreos/etcd", "quay.io", "coreos/etcd", "quay.io/coreos/etcd", "quay.io/coreos/etcd"),
        (
            "127.0.0.1:5000/test/base",
            "127.0.0.1:5000",
            "test/base",
            "127.0.0.1:5000/test/base",
            "127.0.0.1:5000/test/base",
        ),
        ("localhost/foo", "localhost", "foo", "localhost/foo", "localhost/foo"),
        ("my.reg:5000/x", "my.reg:5000", "x", "my.reg:5000/x", "my.reg:5000/x"),
    ],
)
def test_repository_names(arg: str, index: str, remote: str, local: str, canonical: str) -> None:
    r = parse_repository(arg)
    assert (r.index_name, r.remote_name, r.local_name, r.canonical_name) == (index, remote, local, canonical)


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("127.0.0.1:5000/a/b/c", "invalid repository namespace, must be between 2 and 255 characters: a"),
        (
            "127.0.0.1:5000/Test/Base",
            "invalid repository namespace, may only contain [a-z0-9._-] characters: Test",
        ),
        ("http://host", 'invalid repository name, no "/REPO" after hostame: http://host'),
        ("ftp://host/x", 'invalid index scheme, must be "http" or "https": ftp://host'),
    ],
)
def test_repository_errors(arg: str, message: str) -> None:
    with pytest.raises(ReferenceError) as e:
        parse_repository(arg)
    assert str(e.value) == message


def test_reference_split_and_transport() -> None:
    r = parse_reference("127.0.0.1:5000/test/base:v1")
    assert (r.repository.remote_name, r.tag, r.digest) == ("test/base", "v1", "")
    r = parse_reference(f"quay.io/coreos/etcd@{D1}")
    assert (r.repository.remote_name, r.digest, r.ref) == ("coreos/etcd", D1, D1)
    assert parse_reference("busybox").tag == "latest"
    assert parse_repository("busybox").base_url == "https://registry-1.docker.io"
    assert parse_repository("localhost:5000/xx/y").base_url == "http://localhost:5000"
    assert parse_repository("127.0.0.1:5000/xx/y").base_url == "http://127.0.0.1:5000"
    assert parse_repository("my.reg:5000/x").base_url == "https://my.reg:5000"
    assert parse_repository("http://my.reg/x").base_url == "http://my.reg"


def test_layer_uuids_of_the_worked_examples() -> None:
    assert layer_uuid([D1]) == "cd182561-0b55-97f1-6e51-478c534fffbc"
    assert layer_uuid([D1, D2]) == "8306b06a-83ca-703a-ecfb-6fd0e7417d51"
    assert short_id(D1) == "34e9fe7d5feb"
    with pytest.raises(ImgapiError) as e:
        layer_uuid(["sha512:abc"])
    assert (e.value.code, e.value.message) == (
        "ValidationFailed",
        'docker digests should be of the form "sha256:xxx", got: sha512:abc',
    )


def test_published_at_truncates_to_milliseconds() -> None:
    assert published_at("2016-05-05T18:13:29.963947682Z") == "2016-05-05T18:13:29.963Z"
    assert published_at("2020-01-02T03:04:05Z") == "2020-01-02T03:04:05.000Z"
    assert published_at("2020-01-02T05:04:05.5+02:00") == "2020-01-02T03:04:05.500Z"
