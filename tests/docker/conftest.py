"""Docker import fixtures: a registry without auth holding the test images, and a stack on the
test's shape."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.components import SHAPES, Shape
from tests.docker.oci import Image, Layout, Step, noise, push_uncompressed, skopeo_push
from tests.docker.registry import RegistryServer, start_registry
from tests.docker.stack import Stack, start_stack

BASE = Image(
    [
        Step("/bin/sh -c #(nop) ADD file:hello in / ", {"hello.txt": b"hello\n"}),
        Step('/bin/sh -c #(nop)  CMD ["/bin/sh"]'),
    ]
)
CHILD = Image(
    [
        Step("/bin/sh -c #(nop) ADD file:hello in / ", {"hello.txt": b"hello\n"}),
        Step('/bin/sh -c #(nop)  CMD ["/bin/sh"]'),
        Step("/bin/sh -c echo child > /child.txt", {"child.txt": b"child\n"}),
    ]
)
BIG = Image([Step("/bin/sh -c #(nop) ADD file:big in / ", {"big.bin": noise(1_300_000, 1)})])
NOHIST = Image([Step("", {"nohist.txt": b"no history\n"})], history=False)
ARM = Image([Step("/bin/sh -c #(nop) ADD file:arm in / ", {"arm.txt": b"arm\n"})], architecture="arm64")


@dataclass
class Registry0:
    server: RegistryServer
    layout: Path

    @property
    def host(self) -> str:
        return self.server.host


@pytest.fixture(scope="session")
def r0(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry0]:
    """R0 (no auth) with test/base:v1, test/child:v2s2, test/child:oci (OCI media types),
    test/multi:v1 (arm64 then amd64 = child), test/armonly:v1, test/big:v1 (a 1.3 MB incompressible
    layer), test/nohist:v1 (a config without history), test/raw:v1 (an uncompressed layer)."""
    tmp = tmp_path_factory.mktemp("r0")
    server = start_registry(tmp / "registry")
    try:
        layout = Layout(tmp / "oci" / "images")
        layout.tag("base", layout.image(BASE))
        layout.tag("child", layout.image(CHILD))
        layout.multi("multi", [("arm64", ARM), ("amd64", CHILD)])
        layout.multi("armonly", [("arm64", ARM)])
        layout.tag("big", layout.image(BIG))
        layout.tag("nohist", layout.image(NOHIST))
        h = server.host
        skopeo_push(layout.root, "base", f"{h}/test/base:v1")
        skopeo_push(layout.root, "child", f"{h}/test/child:v2s2")
        skopeo_push(layout.root, "child", f"{h}/test/child:oci", oci_format=True)
        skopeo_push(layout.root, "multi", f"{h}/test/multi:v1", all_images=True)
        skopeo_push(layout.root, "armonly", f"{h}/test/armonly:v1", all_images=True)
        skopeo_push(layout.root, "big", f"{h}/test/big:v1")
        skopeo_push(layout.root, "nohist", f"{h}/test/nohist:v1")
        push_uncompressed(h, "test/raw", "v1", {"raw.txt": b"raw layer\n"})
        yield Registry0(server, layout.root)
    finally:
        server.stop()


@pytest.fixture(scope="module", params=SHAPES)
def shape(request: pytest.FixtureRequest) -> Shape:
    """Each test module of tests/docker runs on each shape (embedded; PostgreSQL + S3)."""
    return Shape.of(request, request.param)


@pytest.fixture(scope="module")
def stack(shape: Shape, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A public-mode stack per test module, on the module's shape."""
    s = start_stack(tmp_path_factory.mktemp("docker"), "d", shape=shape, mode="public")
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture()
def c(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        yield client
