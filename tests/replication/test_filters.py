"""Job filters end to end (owner, type, ``!type``, os, public, channel) and replication between
public-mode servers with channels; plus properties of the filter predicate itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from imgapi.v1 import catalog_pb2, replication_pb2

from replication.domain.filters import Filters
from tests.replication.stacks import (
    DC,
    EMPEROR,
    LUKE,
    OPERATOR,
    VADER,
    Replicator,
    start_dc,
    start_replicator,
)

CHANNELS: list[dict[str, Any]] = [
    {"name": "dev", "description": "development", "default": True},
    {"name": "staging", "description": "staging"},
    {"name": "release", "description": "release"},
]


def synced_set(r: Replicator, b: DC, job_id: str) -> set[str]:
    """Wait for the job's initial pass and its lag to reach 0; then the images b holds."""
    r.wait_job(job_id, "job synced", lambda j: j.synced and j.lag == 0)
    return set(b.images())


def jobs_select(r: Replicator, a: DC, b: DC, cases: list[tuple[dict[str, Any], set[str]]]) -> None:
    """One job per case, in turn: each adds to b exactly the images its filters select."""
    expected: set[str] = set()
    for filters, selected in cases:
        job_id = r.create_job(
            name=json.dumps(filters),
            source_catalog=a.catalog_target,
            source_blob=a.blob_target,
            filters=filters,
        )
        expected |= selected
        assert synced_set(r, b, job_id) == expected, filters
        r.stub.DeleteJob(replication_pb2.DeleteJobRequest(id=job_id), timeout=10)


def test_each_filter_selects_exactly_its_images(tmp_path: Path) -> None:
    a = start_dc(tmp_path, "a")
    b = start_dc(tmp_path, "b")
    r = start_replicator(tmp_path, b)
    try:
        i1 = a.publish(b"1", owner=VADER, type="zone-dataset", os="smartos", public=True)
        i2 = a.publish(b"2", owner=LUKE, type="lx-dataset", os="linux", public=False)
        i3 = a.publish(b"3", owner=VADER, type="other", os="other", public=False)
        i4 = a.publish(b"4", owner=EMPEROR, type="zone-dataset", os="linux", public=True)
        i5 = a.publish(b"5", owner=EMPEROR, type="lx-dataset", os="smartos", public=False)
        jobs_select(
            r,
            a,
            b,
            [
                ({"owner": LUKE}, {i2}),
                ({"type": "other"}, {i3}),
                ({"os": "linux", "type": "!lx-dataset"}, {i4}),
                ({"public": "true"}, {i1, i4}),
                ({"type": "!zone-dataset", "owner": EMPEROR}, {i5}),
            ],
        )
    finally:
        r.stop()
        b.stop()
        a.stop()


def test_channel_filter_between_public_channel_servers(tmp_path: Path) -> None:
    a = start_dc(tmp_path, "a", mode="public", channels=CHANNELS)
    b = start_dc(tmp_path, "b", mode="public", channels=CHANNELS)
    r = start_replicator(tmp_path, b)
    try:
        dev = a.publish(b"dev", public=True)
        staged = a.publish(b"staged", public=True)
        released = a.publish(b"released", public=True)
        for uuid, channel in ((staged, "staging"), (released, "release")):
            a.call(
                "ChannelAddImage",
                catalog_pb2.ChannelAddImageRequest(caller=OPERATOR, uuid=uuid, channel=channel),
            )
        job_id = r.create_job(
            name="release-only",
            source_catalog=a.catalog_target,
            source_blob=a.blob_target,
            filters={"channel": "release"},
        )
        assert synced_set(r, b, job_id) == {released}
        copy, source = b.get(released), a.get(released)
        assert copy is not None and source is not None
        assert copy.state == "active" and copy.public
        assert copy.files[0].sha1 == source.files[0].sha1
        assert b.file_bytes(released) == b"released"
        job = r.job(job_id)
        assert job.errors == 0 and not job.conflicts and job.images_copied == 1
        assert b.get(dev) is None and b.get(staged) is None
    finally:
        r.stop()
        b.stop()
        a.stop()


# --- properties of the predicate -----------------------------------------------------------------


def test_tag_filters_match_as_list_images_does(tmp_path: Path) -> None:
    """``tag.KEY=`` selects an empty value only; values compare as JavaScript's String() writes them."""
    a = start_dc(tmp_path, "a")
    b = start_dc(tmp_path, "b")
    r = start_replicator(tmp_path, b)
    try:
        empty = a.publish(b"1", tags={"role": ""})
        a.publish(b"2", tags={"role": "db"})
        tiny = a.publish(b"3", tags={"n": 1e-7})
        both = a.publish(b"4", tags={"n": True, "role": "db"})
        a.publish(b"5", tags={"n": "True"})
        jobs_select(
            r,
            a,
            b,
            [
                ({"tags": {"role": ""}}, {empty}),
                ({"tags": {"n": "1e-7"}}, {tiny}),
                ({"tags": {"n": "true", "role": "db"}}, {both}),
            ],
        )
    finally:
        r.stop()
        b.stop()
        a.stop()


OWNERS = [VADER, LUKE, ""]
words = st.sampled_from(["base", "app", "my-app", "zone-dataset", "zvol", "other", "smartos", "linux", ""])
manifests = st.fixed_dictionaries(
    {},
    optional={
        "owner": st.sampled_from(OWNERS),
        "name": words,
        "type": st.sampled_from(["zone-dataset", "zvol", "other"]),
        "os": st.sampled_from(["smartos", "linux"]),
        "channels": st.lists(st.sampled_from(["dev", "staging", "release"]), unique=True),
        "public": st.booleans(),
        "tags": st.dictionaries(
            st.sampled_from(["role", "n"]), st.sampled_from(["db", "", 42, True, 1.0, 1e-7, ["db"], None])
        ),
    },
)
filters = st.builds(
    Filters,
    owner=st.sampled_from(OWNERS),
    name=st.one_of(words, words.map(lambda w: "~" + w)),
    type=st.one_of(
        st.just(""),
        st.sampled_from(["zone-dataset", "zvol", "other"]).map(lambda t: t if len(t) % 2 else "!" + t),
    ),
    os=st.sampled_from(["", "smartos", "linux"]),
    channel=st.sampled_from(["", "dev", "release"]),
    public=st.sampled_from(["", "true", "false"]),
    tags=st.dictionaries(
        st.sampled_from(["role", "n"]), st.sampled_from(["db", "", "42", "true"]), max_size=2
    ),
)


@settings(max_examples=300)
@given(filters, manifests)
def test_a_filter_is_the_conjunction_of_its_parts(f: Filters, m: dict[str, Any]) -> None:
    parts = [Filters.from_dict({k: v}) for k, v in f.as_dict().items() if v]
    assert f.matches(m) == all(p.matches(m) for p in parts)
    assert Filters().matches(m)


@settings(max_examples=200)
@given(filters)
def test_filters_round_trip_through_their_stored_form(f: Filters) -> None:
    assert Filters.from_dict(json.loads(json.dumps(f.as_dict()))) == f
    f.validate()


@settings(max_examples=200)
@given(st.sampled_from(["zone-dataset", "zvol", "other"]), manifests)
def test_excluding_a_type_is_the_negation_of_selecting_it(t: str, m: dict[str, Any]) -> None:
    if "type" in m:
        assert Filters(type="!" + t).matches(m) != Filters(type=t).matches(m)


@settings(max_examples=200)
@given(manifests)
def test_single_filters_follow_their_rule(m: dict[str, Any]) -> None:
    for owner in OWNERS[:2]:
        assert Filters(owner=owner).matches(m) == (m.get("owner") == owner)
    for channel in ("dev", "release"):
        assert Filters(channel=channel).matches(m) == (channel in m.get("channels", []))
    assert Filters(public="true").matches(m) == (m.get("public") is True)
    assert Filters(public="false").matches(m) == (m.get("public") is not True)
    name = m.get("name")
    assert Filters(name="~app").matches(m) == (isinstance(name, str) and "app" in name)
    tags = m.get("tags", {})
    # As ListImages' tag.KEY=VALUE: an empty value matches a tag searchable by its key alone (an
    # empty string, a non-scalar), numbers and booleans compare as JavaScript's String() writes them.
    assert Filters(tags={"role": ""}).matches(m) == ("role" in tags and tags["role"] in ("", ["db"], None))
    assert Filters(tags={"n": "42"}).matches(m) == (tags.get("n") in (42, "42"))
    assert Filters(tags={"n": "true"}).matches(m) == (tags.get("n") is True)
    assert Filters(tags={"n": "1"}).matches(m) == (tags.get("n") == 1.0 and tags.get("n") is not True)
    assert Filters(tags={"n": "1e-7"}).matches(m) == (tags.get("n") == 1e-7)
