"""ListImages and GetImage visibility through gRPC (filters, and what an account may see), with the
dc-test-images.json / public-test-images.json records and generated images, on both backends."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterator
from typing import Any

import pytest
from imgapi.v1 import common_pb2

from tests.catalog.conftest import (
    EMPEROR,
    LUKE,
    SDC,
    VADER,
    Catalog,
    caller,
    catalog_dc,
    catalog_fixture,
    catalog_private,
    catalog_public,
    manifest,
)
from tests.catalog.grpc_support import (
    ADMIN_VIEW,
    BASE_181,
    BASE_200,
    DARK_SIDE,
    FATHER,
    JOIN_US,
    NODEJS_100,
    create_active,
    errs,
    etags,
    get,
    get_view,
    list_images,
    list_uuids,
    new_uuid,
    seed_fixture,
    update,
)

__all__ = ["catalog_dc", "catalog_private", "catalog_public"]

catalog_vis = catalog_fixture(mode="dc", admin_uuid=SDC)
catalog_chan = catalog_fixture(
    mode="public",
    channels=[
        {"name": "dev", "description": "development", "default": True},
        {"name": "staging", "description": "staging"},
        {"name": "release", "description": "release"},
    ],
)


@pytest.fixture(scope="module")
def vis(catalog_vis: Catalog) -> Catalog:
    """A dc-mode catalog holding exactly the six dc-test-images.json records."""
    seed_fixture(catalog_vis, "dc-test-images.json")
    return catalog_vis


@pytest.fixture(scope="module")
def chan(catalog_chan: Catalog) -> Catalog:
    seed_fixture(catalog_chan, "public-test-images.json")
    return catalog_chan


ALL_ASC = [JOIN_US, BASE_200, DARK_SIDE, NODEJS_100, FATHER, BASE_181]


# --- visibility (account scoping) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("account", "params", "expected"),
    [
        ("", {}, {BASE_181, FATHER}),
        ("", {"state": "all"}, set(ALL_ASC)),
        ("", {"state": "active"}, {BASE_181, FATHER}),
        ("", {"state": "disabled"}, {NODEJS_100, DARK_SIDE}),
        ("", {"state": "unactivated"}, {BASE_200, JOIN_US}),
        ("", {"state": "all", "owner": VADER}, {FATHER, DARK_SIDE, JOIN_US}),
        ("", {"state": "all", "public": "true"}, {BASE_181, NODEJS_100, BASE_200}),
        ("", {"state": "all", "public": "false"}, {FATHER, DARK_SIDE, JOIN_US}),
        (VADER, {}, {BASE_181, FATHER}),
        (VADER, {"state": "all"}, {BASE_181, NODEJS_100, FATHER, DARK_SIDE, JOIN_US}),
        (VADER, {"state": "disabled"}, {DARK_SIDE}),
        (VADER, {"state": "unactivated"}, {JOIN_US}),
        (VADER, {"state": "all", "owner": VADER}, {FATHER, DARK_SIDE, JOIN_US}),
        (VADER, {"state": "all", "owner": SDC}, {BASE_181, NODEJS_100}),
        (VADER, {"state": "unactivated", "owner": SDC}, set()),
        (LUKE, {}, {BASE_181, FATHER}),
        (LUKE, {"state": "all"}, {BASE_181, NODEJS_100, FATHER, DARK_SIDE}),
        (LUKE, {"state": "disabled"}, set()),
        (LUKE, {"state": "unactivated"}, set()),
        (LUKE, {"state": "creating"}, set()),
        (LUKE, {"state": "all", "owner": VADER}, {FATHER, DARK_SIDE}),
        (LUKE, {"state": "all", "owner": LUKE}, set()),
        (LUKE, {"state": "all", "public": "false"}, {FATHER, DARK_SIDE}),
        (LUKE, {"state": "all", "public": "true"}, {BASE_181, NODEJS_100}),
        (LUKE, {"state": "all", "owner": VADER, "public": "true"}, set()),
        (LUKE, {"state": "disabled", "owner": VADER}, set()),
        (EMPEROR, {"state": "all"}, {BASE_181, NODEJS_100}),
        (EMPEROR, {}, {BASE_181}),
        (SDC, {"state": "all"}, {BASE_181, NODEJS_100, BASE_200}),
        ("not-a-uuid", {"state": "all"}, {BASE_181, NODEJS_100}),  # not validated here
    ],
)
def test_account_scoping(vis: Catalog, account: str, params: dict[str, str], expected: set[str]) -> None:
    got = list_uuids(vis, account, **params)
    assert len(got) == len(set(got)), "duplicates"
    assert set(got) == expected


@pytest.mark.parametrize(
    ("account", "visible", "hidden"),
    [
        ("", set(ALL_ASC), set()),
        (VADER, {BASE_181, NODEJS_100, FATHER, DARK_SIDE, JOIN_US}, {BASE_200}),
        (LUKE, {BASE_181, NODEJS_100, FATHER, DARK_SIDE}, {BASE_200, JOIN_US}),
        (EMPEROR, {BASE_181, NODEJS_100}, {BASE_200, JOIN_US, FATHER, DARK_SIDE}),
    ],
)
def test_get_visibility(vis: Catalog, account: str, visible: set[str], hidden: set[str]) -> None:
    for u in visible:
        assert get_view(vis, u, account)["uuid"] == u
    for u in hidden:
        e = vis.error("GetImage", caller=caller(account), uuid=u)
        assert (e.code, e.http_status, e.message) == ("ResourceNotFound", 404, "image not found")


def test_get_errors(vis: Catalog) -> None:
    missing = new_uuid()
    e = vis.error("GetImage", caller=caller(), uuid=missing)
    assert (e.code, e.http_status, e.message) == ("ResourceNotFound", 404, f"image {missing} not found")
    e = vis.error("GetImage", caller=caller(), uuid="not-a-uuid")
    assert (e.code, e.http_status) == ("ResourceNotFound", 404)
    e = vis.error("GetImage", caller=caller("luke"), uuid=FATHER)
    assert (e.code, e.http_status) == ("InvalidParameter", 422)
    assert e.body() == {
        "code": "InvalidParameter",
        "message": 'invalid "account": not a UUID: "luke"',
        "errors": [{"field": "account", "code": "Invalid"}],
    }
    e = vis.error("GetImage", caller=caller(), uuid=FATHER, incl_admin_fields="yes")
    assert (e.code, errs(e)) == ("InvalidParameter", [("inclAdminFields", "Invalid")])


def test_fixture_records_render(vis: Catalog) -> None:
    father = get_view(vis, FATHER)
    assert father["acl"] == [LUKE]  # stored bare string normalized
    assert "activated" not in father and "objectclass" not in father
    assert father["files"] == [
        {"sha1": "25592745c0b06822e0a4c9e9945e67322bdfe619", "size": 42, "compression": "gzip"}
    ]
    base = get_view(vis, BASE_181)
    assert base["urn"] == "sdc:sdc:base:1.8.1"
    admin = vis.call("GetImage", caller=caller(), uuid=BASE_181, incl_admin_fields="true").image.view_json
    assert '"stor":"local"' in admin
    assert (
        list_images(vis, name="base", version="1.8.1", incl_admin_fields="true")[0]["files"][0]["stor"]
        == "local"
    )
    assert (
        "stor" not in list_images(vis, name="base", version="1.8.1", incl_admin_fields="false")[0]["files"][0]
    )


def test_get_not_modified(vis: Catalog) -> None:
    r = get(vis, FATHER)
    etag = r.image.etag
    for cond in (etags(etag), etags(etag, weak=True), etags("x", etag), etags("*"), etags("x", "*")):
        r2 = get(vis, FATHER, preconditions=common_pb2.Preconditions(if_none_match=cond))
        assert r2.not_modified, cond
    r3 = get(vis, FATHER, preconditions=common_pb2.Preconditions(if_none_match=etags("other")))
    assert not r3.not_modified and r3.image.view_json == r.image.view_json
    e = vis.error(
        "GetImage",
        caller=caller(),
        uuid=FATHER,
        preconditions=common_pb2.Preconditions(if_match=etags("other")),
    )
    assert (e.code, e.http_status) == ("PreconditionFailed", 412)
    assert get(vis, FATHER, preconditions=common_pb2.Preconditions(if_match=etags(etag))).image.etag == etag


# --- sorting, marker, limit -----------------------------------------------------------------------


def test_sort(vis: Catalog) -> None:
    assert list_uuids(vis, state="all") == ALL_ASC
    for s in ("published_at", "published_at.asc", "published_at.ASC"):
        assert list_uuids(vis, state="all", sort=s) == ALL_ASC, s
    for s in ("published_at.desc", "published_at.DESC", "published_at.foo"):
        assert list_uuids(vis, state="all", sort=s) == ALL_ASC[::-1], s


def test_marker_uuid_inclusive(vis: Catalog) -> None:
    assert list_uuids(vis, state="all", marker=DARK_SIDE) == [DARK_SIDE, NODEJS_100, FATHER, BASE_181]
    assert list_uuids(vis, state="all", marker=DARK_SIDE, sort="published_at.desc") == [
        DARK_SIDE,
        BASE_200,
        JOIN_US,
    ]
    # a marker without published_at compares as (epoch, uuid)
    assert list_uuids(vis, state="all", marker=BASE_200) == ALL_ASC[1:]
    # the marker itself need not match the filters (no visibility check)
    assert list_uuids(vis, EMPEROR, state="all", marker=DARK_SIDE) == [NODEJS_100, BASE_181]
    assert list_uuids(vis, state="all", marker=BASE_181, limit="1") == [BASE_181]


@pytest.mark.parametrize(
    ("marker", "sort", "expected"),
    [
        ("2012-11-01", "", [FATHER, BASE_181]),
        ("2012-11-01T00:00:00Z", "", [FATHER, BASE_181]),
        ("2012-11-01", "published_at.desc", [NODEJS_100, DARK_SIDE]),
        ("Thu, 01 Nov 2012 00:00:00 GMT", "", [FATHER, BASE_181]),
        ("2012-11-02T22:46:45.992Z", "", [FATHER, BASE_181]),
        ("2012-11-02T22:46:45.993Z", "", []),
        ("2012-11-02T23:46:45.992+01:00", "", [FATHER, BASE_181]),
        ("2012-11-02T22:46:45.992Z", "published_at.desc", [BASE_181, FATHER, NODEJS_100, DARK_SIDE]),
        ("1970-01-01", "", [DARK_SIDE, NODEJS_100, FATHER, BASE_181]),
        ("2012-10-02T22:46:45.991Z", "published_at.desc", []),
    ],
)
def test_marker_date(vis: Catalog, marker: str, sort: str, expected: list[str]) -> None:
    assert list_uuids(vis, state="all", marker=marker, sort=sort) == expected


def test_marker_errors(vis: Catalog) -> None:
    missing = new_uuid()
    e = vis.error("ListImages", caller=caller(), marker=missing)
    assert (e.code, e.http_status, e.message) == ("ResourceNotFound", 404, f"image {missing} not found")
    for bad in ("yesterday", "2012-13-45", "x" * 50):
        e = vis.error("ListImages", caller=caller(), marker=bad)
        assert (e.code, e.http_status) == ("InvalidParameter", 422), bad
        assert errs(e) == [("marker", "Invalid")]
        assert e.message == f'invalid value for "marker" param: "{bad}" is not a UUID or date string'


@pytest.mark.parametrize(
    ("limit", "n"), [("", 6), ("0", 6), ("2", 2), ("1.9", 1), ("5000", 6), ("1e3", 6), ("3", 3)]
)
def test_limit(vis: Catalog, limit: str, n: int) -> None:
    assert list_uuids(vis, state="all", limit=limit) == ALL_ASC[:n]


@pytest.mark.parametrize("limit", ["abc", "NaN", "-1", "1x", "-0.5"])
def test_limit_invalid(vis: Catalog, limit: str) -> None:
    e = vis.error("ListImages", caller=caller(), limit=limit, state="bogus", public="x")
    assert (e.code, e.http_status) == ("InvalidParameter", 422)
    assert errs(e) == [("state", "Invalid")]  # sic: the reference names the wrong field
    assert e.message == f'invalid limit: "{limit}"'


def test_parameter_precedence(vis: Catalog) -> None:
    e = vis.error("ListImages", caller=caller(), state="bogus", public="x", sort="name", marker="zz")
    assert (e.message, errs(e)) == ('invalid state: "bogus"', [("state", "Invalid")])
    e = vis.error("ListImages", caller=caller(), public="x", sort="name", marker="zz")
    assert errs(e) == [("public", "Invalid")]
    e = vis.error("ListImages", caller=caller(), sort="name.asc", marker="zz")
    assert errs(e) == [("sort", "Invalid")]
    assert e.message == "invalid 'sort': not a valid sorting attribute: 'name'"
    e = vis.error("ListImages", caller=caller(), marker="zz", incl_admin_fields="x")
    assert errs(e) == [("inclAdminFields", "Invalid")]  # adminFields precede the handler


@pytest.mark.parametrize("state", ["Active", "ALL", "deleted", " active"])
def test_state_invalid(vis: Catalog, state: str) -> None:
    e = vis.error("ListImages", caller=caller(), state=state)
    assert (e.code, e.http_status, errs(e)) == ("InvalidParameter", 422, [("state", "Invalid")])


@pytest.mark.parametrize("public", ["yes", "1", "TRUE"])
def test_public_invalid(vis: Catalog, public: str) -> None:
    e = vis.error("ListImages", caller=caller(), public=public)
    assert (e.code, errs(e)) == ("InvalidParameter", [("public", "Invalid")])


# --- filters -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def filt(catalog_dc: Catalog) -> Iterator[tuple[Catalog, str, dict[str, str]]]:
    """A set of images of one fresh owner exercising every filter."""
    owner = new_uuid()
    cat = catalog_dc
    specs: dict[str, dict[str, Any]] = {
        "alpha": dict(
            name="alpha-web", version="1.0.0", tags={"num": 42, "color": "red"}, billing_tags=["a", "b"]
        ),
        "alpha2": dict(
            name="alpha-web", version="2.0.0-beta", tags={"num": "42", "flag": True}, billing_tags=["a"]
        ),
        "beta": dict(
            name="Beta", version="1.2.3", os="linux", type="lx-dataset", tags={"flag": False, "f": 1.0}
        ),
        "zvol": dict(
            name="disk",
            version="10.0",
            os="linux",
            type="zvol",
            nic_driver="virtio",
            disk_driver="virtio",
            cpu_type="host",
            image_size=1024,
            public=True,
            tags={"empty": "", "nul": None, "obj": {"a": 1}, "long": "l" * 101, "100": "x" * 100},
        ),
        "other": dict(name="x", version="0", type="other", os="other", tags={"tag.dotted": "v", "num": 42.5}),
    }
    out: dict[str, str] = {}
    for key, over in specs.items():
        out[key] = create_active(cat, manifest(owner=owner, **over))["uuid"]
    # one unactivated, one disabled, one placeholder-state image of the same owner
    out["unact"] = cat.create(manifest(owner=owner, name="alpha-web", version="9"))["uuid"]
    out["disabled"] = create_active(cat, manifest(owner=owner, name="alpha-web", version="8"))["uuid"]
    cat.call("DisableImage", caller=caller(), uuid=out["disabled"])
    out["failed"] = cat.create(manifest(owner=owner, name="failed"))["uuid"]
    update(cat, out["failed"], {"state": "failed", "error": {"message": "x"}})
    yield cat, owner, out


def fl(filt: tuple[Catalog, str, dict[str, str]], **params: Any) -> set[str]:
    cat, owner, ids = filt
    by_uuid = {v: k for k, v in ids.items()}
    got = list_uuids(cat, owner=owner, **params)
    assert len(got) == len(set(got))
    return {by_uuid[u] for u in got}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"alpha", "alpha2", "beta", "zvol", "other"}),
        ({"state": "all"}, {"alpha", "alpha2", "beta", "zvol", "other", "unact", "disabled", "failed"}),
        ({"state": "unactivated"}, {"unact", "failed"}),
        ({"state": "disabled"}, {"disabled"}),
        ({"state": "failed"}, {"failed"}),
        ({"state": "creating"}, set()),
        ({"name": "alpha-web"}, {"alpha", "alpha2"}),
        ({"name": "alpha"}, set()),
        ({"name": "~lpha"}, {"alpha", "alpha2"}),
        ({"name": "~beta"}, set()),  # case-sensitive
        ({"name": "~Beta"}, {"beta"}),
        ({"name": "~"}, {"alpha", "alpha2", "beta", "zvol", "other"}),
        ({"version": "~beta"}, {"alpha2"}),
        ({"version": "1.0.0"}, {"alpha"}),
        ({"version": "~.0", "name": "~a"}, {"alpha", "alpha2"}),
        ({"type": "zvol"}, {"zvol"}),
        ({"type": "!zvol"}, {"alpha", "alpha2", "beta", "other"}),
        ({"type": "!zone-dataset"}, {"beta", "zvol", "other"}),
        ({"os": "linux"}, {"beta", "zvol"}),
        ({"os": "smart"}, set()),
        ({"public": "true"}, {"zvol"}),
        ({"public": "false"}, {"alpha", "alpha2", "beta", "other"}),
        ({"tags": {"num": "42"}}, {"alpha", "alpha2"}),
        ({"tags": {"num": "42.5"}}, {"other"}),
        ({"tags": {"num": ""}}, set()),  # "KEY=" matches only the empty string, not any value
        ({"tags": {"flag": "true"}}, {"alpha2"}),
        ({"tags": {"flag": "false"}}, {"beta"}),
        ({"tags": {"f": "1"}}, {"beta"}),
        ({"tags": {"f": "1.0"}}, set()),
        ({"tags": {"num": "42", "color": "red"}}, {"alpha"}),
        ({"tags": {"num": "42", "color": "blue"}}, set()),
        ({"tags": {"empty": ""}}, {"zvol"}),
        ({"tags": {"nul": ""}}, {"zvol"}),
        ({"tags": {"obj": ""}}, {"zvol"}),
        ({"tags": {"obj": '{"a":1}'}}, set()),
        ({"tags": {"long": "l" * 101}}, set()),
        ({"tags": {"long": ""}}, {"zvol"}),
        ({"tags": {"100": "x" * 100}}, {"zvol"}),
        ({"tags": {"tag.dotted": "v"}}, {"other"}),
        ({"tags": {"missing": ""}}, set()),
        ({"billing_tags": ["a"]}, {"alpha", "alpha2"}),
        ({"billing_tags": ["a", "b"]}, {"alpha"}),
        ({"billing_tags": ["b", "c"]}, set()),
        ({"name": "alpha-web", "state": "all"}, {"alpha", "alpha2", "unact", "disabled"}),
        ({"name": "alpha-web", "state": "all", "sort": "published_at.desc", "limit": "1"}, {"disabled"}),
    ],
)
def test_filters(
    filt: tuple[Catalog, str, dict[str, str]], params: dict[str, Any], expected: set[str]
) -> None:
    assert fl(filt, **params) == expected


def test_empty_tag_value_matches_only_the_empty_string(catalog_dc: Catalog) -> None:
    owner = new_uuid()
    empty = create_active(catalog_dc, manifest(owner=owner, tags={"role": ""}))["uuid"]
    create_active(catalog_dc, manifest(owner=owner, tags={"role": "db"}))
    create_active(catalog_dc, manifest(owner=owner, tags={"other": ""}))
    assert list_uuids(catalog_dc, owner=owner, tags={"role": ""}) == [empty]


#: Tag keys long enough that the image's pairs are not carried in the listing indexes.
_LONG_TAGS = {f"key-{i:02d}-{'k' * 20}": "v" for i in range(20)}
_ODD_KEY = 'q"u\\o\x1ft\u00e9", "'


@pytest.mark.parametrize("limit", ["1", "1000"])
def test_tag_filters_exact_whether_pairs_are_carried_or_probed(catalog_dc: Catalog, limit: str) -> None:
    """A tag filter matches the same images whether it is tested on the listing index's
    ``tag_pairs`` or, for tags too long to carry there, by probing ``image_tags``; odd characters
    (quotes, the pairs' separator, unicode) match exactly and a prefix does not. With limit 1 the
    walk in order serves the query on SQLite too (with 1000 a tag this rare drives it instead)."""
    owner = new_uuid()
    short = create_active(catalog_dc, manifest(owner=owner, tags={"role": "db", _ODD_KEY: '", "x'}))["uuid"]
    long = create_active(catalog_dc, manifest(owner=owner, tags={"role": "db", **_LONG_TAGS}))["uuid"]
    create_active(catalog_dc, manifest(owner=owner, tags={"role": "dba", "x": "role"}))
    create_active(catalog_dc, manifest(owner=owner))

    def listed(tags: dict[str, str], descending: bool = False) -> list[str]:
        sort = "published_at.desc" if descending else "published_at"
        return list_uuids(catalog_dc, owner=owner, tags=tags, limit=limit, sort=sort)

    # the order of every listing (published_at, then uuid), kept to the two tagged role=db
    both = [u for u in list_uuids(catalog_dc, owner=owner) if u in (short, long)]
    want = both if limit == "1000" else both[:1]
    assert listed({"role": "db"}) == want
    assert listed({"role": "db"}, descending=True) == (both[::-1] if limit == "1000" else both[-1:])
    assert listed({"key-07-" + "k" * 20: "v"}) == [long]
    assert listed({_ODD_KEY: '", "x'}) == [short]
    assert listed({_ODD_KEY: '", "'}) == []
    assert listed({"role": "d"}) == []
    assert listed({"x": "rol"}) == []


def test_filters_with_account(filt: tuple[Catalog, str, dict[str, str]]) -> None:
    cat, owner, ids = filt
    # another account sees only the public activated image of this owner
    assert list_uuids(cat, LUKE, owner=owner, state="all") == [ids["zvol"]]
    assert set(list_uuids(cat, owner, owner=owner, state="all")) == set(ids.values())
    assert list_uuids(cat, owner, state="failed") == [ids["failed"]]
    assert list_uuids(cat, LUKE, owner=owner, tags={"empty": ""}) == [ids["zvol"]]
    assert list_uuids(cat, LUKE, owner=owner, tags={"num": "42"}) == []


def test_limit_clamp_and_pagination(catalog_dc: Catalog) -> None:
    """default/maximum 1000 and the client's marker loop (uuid marker, ties on published_at)."""
    owner = new_uuid()
    stamp = "2020-01-01T00:00:00.000Z"
    recs = []
    for i in range(1105):
        recs.append(
            {
                "v": 2,
                "uuid": str(uuidlib.uuid4()),
                "owner": owner,
                "name": "bulk",
                "version": str(i),
                "state": "active",
                "disabled": False,
                "activated": True,
                "public": False,
                # half share one timestamp, the rest are distinct
                "published_at": stamp if i % 2 else f"2021-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
                "type": "zone-dataset",
                "os": "smartos",
                "files": [{"sha1": "a" * 40, "size": 1, "compression": "none"}],
                "acl": [],
            }
        )
    svc = catalog_dc.service
    if hasattr(svc, "store_many"):
        svc.store_many(recs)
    else:
        for r in recs:
            catalog_dc.seed(r)
    first = list_uuids(catalog_dc, owner=owner)
    assert len(first) == 1000
    assert len(list_uuids(catalog_dc, owner=owner, limit="5000")) == 1000
    assert len(list_uuids(catalog_dc, owner=owner, limit="1000.7")) == 1000
    seen = list(first)
    page = first
    while len(page) == 1000:
        page = list_uuids(catalog_dc, owner=owner, limit="1000", marker=page[-1])
        assert page[0] == seen[-1]  # the marker is inclusive
        seen += page[1:]
    assert len(seen) == len(set(seen)) == 1105
    expected = [r["uuid"] for r in sorted(recs, key=lambda r: (r["published_at"], r["uuid"]))]
    assert seen == expected
    desc = list_uuids(catalog_dc, owner=owner, sort="published_at.desc", limit="10")
    assert desc == expected[::-1][:10]


# --- anonymous requests on public / private servers ------------------------------------------------


@pytest.mark.parametrize("which", ["public", "private"])
def test_anonymous_state_shortcut(catalog_public: Catalog, catalog_private: Catalog, which: str) -> None:
    cat = catalog_public if which == "public" else catalog_private
    pub = which == "public"
    owner = new_uuid()
    act = create_active(cat, manifest(owner=owner, public=pub))["uuid"]
    dis = create_active(cat, manifest(owner=owner, public=pub))["uuid"]
    cat.call("DisableImage", caller=caller(), uuid=dis)
    una = cat.create(manifest(owner=owner, public=pub))["uuid"]
    for state in ("disabled", "unactivated", "creating", "failed"):
        assert list_uuids(cat, owner=owner, state=state) == [], state
    assert list_uuids(cat, owner=owner, state="all") == [act]
    assert list_uuids(cat, owner=owner) == [act]
    # authenticated requests get the real filters
    assert set(list_uuids(cat, owner=owner, state="all", authenticated=True)) == {act, dis, una}
    assert list_uuids(cat, owner=owner, state="disabled", authenticated=True) == [dis]
    # invalid state is still reported first
    e = cat.error("ListImages", caller=caller(), state="nope")
    assert e.code == "InvalidParameter"
    # inclAdminFields needs authentication on non-dc servers
    e = cat.error("ListImages", caller=caller(), incl_admin_fields="true")
    assert (e.code, e.http_status) == ("UnauthorizedError", 401)
    assert e.message == 'Unauthorized (auth required to use "inclAdminFields" parameter)'
    e = cat.error("GetImage", caller=caller(), uuid=act, incl_admin_fields="true")
    assert (e.code, e.http_status) == ("UnauthorizedError", 401)
    r = cat.call("GetImage", caller=caller(authenticated=True), uuid=act, incl_admin_fields="true")
    assert '"stor":"local"' in r.image.view_json
    # the anonymous GetImage has no state restriction
    assert get_view(cat, una)["state"] == "unactivated"


# --- channels ----------------------------------------------------------------------------------


INDEV = "8ba6d20f-6013-f944-9d69-929ebdef45a2"
INSTAGING = "3e6ebb8c-bb37-9245-ba5d-43d172461be6"
INMULTI = "4e6ebb8c-bb37-9245-ba5d-43d172461be6"
INNOCHAN = "c58161c0-2547-11e2-a75e-9fdca1940570"


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("", {INDEV, INMULTI}),
        ("dev", {INDEV, INMULTI}),
        ("staging", {INSTAGING, INMULTI}),
        ("release", {INMULTI}),
        ("*", {INDEV, INSTAGING, INMULTI}),
    ],
)
def test_channel_filter(chan: Catalog, channel: str, expected: set[str]) -> None:
    fixture_ids = {INDEV, INSTAGING, INMULTI, INNOCHAN}
    got = [u for u in list_uuids(chan, channel=channel, state="all") if u in fixture_ids]
    assert set(got) == expected and len(got) == len(expected)


def test_channel_get(chan: Catalog) -> None:
    assert get_view(chan, INSTAGING, channel="staging")["channels"] == ["staging"]
    assert get_view(chan, INSTAGING, channel="*")["uuid"] == INSTAGING
    e = chan.error("GetImage", caller=caller(), uuid=INSTAGING)  # default channel dev
    assert (e.code, e.http_status, e.message) == ("ResourceNotFound", 404, "image not found")
    # a record without channels is invalid on a channel server: invisible everywhere
    e = chan.error("GetImage", caller=caller(channel="*"), uuid=INNOCHAN)
    assert (e.code, e.message) == ("ResourceNotFound", f"image {INNOCHAN} not found")
    e = chan.error("GetImage", caller=caller(channel="bogus"), uuid=INDEV)
    assert (e.code, errs(e)) == ("ValidationFailed", [("channel", "Invalid")])
    e = chan.error("ListImages", caller=caller(channel="bogus"), limit="x")
    assert (e.code, e.message) == ("ValidationFailed", "unknown channel: bogus")
    # v1 view: no channels key
    v1 = chan.call(
        "GetImage",
        caller=caller(channel="*"),
        view=common_pb2.ImageView(include_channels=False),
        uuid=INMULTI,
    )
    assert '"channels"' not in v1.image.view_json
    admin = chan.call(
        "GetImage", caller=caller(channel="*", authenticated=True), view=ADMIN_VIEW, uuid=INMULTI
    )
    assert '"channels":["dev","staging","release"]' in admin.image.view_json
