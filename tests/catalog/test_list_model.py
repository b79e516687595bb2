"""A model-based oracle for ListImages: random datasets and random filter combinations, markers,
sorts and limits, checked against a plain-Python model of the ListImages rules, on SQLite and
PostgreSQL.

The model below is written from the rules (filters, state conditions, ``account`` visibility, sort
key, inclusive markers, limit clamping), independently of the SQL in catalog_service/adapters/db/listing.py.
Hypothesis draws a dataset (small vocabularies, so that filters collide and published_at ties
happen), stores it in a fresh catalog, then draws queries against it and compares the exact
ordered list of uuids: through gRPC on SQLite and PostgreSQL, and through the REST gateway (query
string parsing included) on the embedded and the production shape.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.catalog.conftest import SDC, Catalog, caller, database, running_catalog
from tests.catalog.grpc_support import list_uuids
from tests.components import SHAPES, Shape
from tests.gateway.conftest import Stack, start_stack

ACCOUNTS = [
    "11111111-1111-4111-8111-111111111111",
    "22222222-2222-4222-8222-222222222222",
    "33333333-3333-4333-8333-333333333333",
]
STRANGER = "44444444-4444-4444-8444-444444444444"  # owns nothing, on no ACL
NAMES = ["base", "base64", "minimal", "ubase", "Base"]
VERSIONS = ["1.0.0", "1.0.1", "2.0", "10.0.0"]
OSES = ["smartos", "linux", "other"]
TYPES = ["zone-dataset", "lx-dataset", "other"]
#: The long key makes an image's tag pairs too long to carry in the listing indexes
#: (``images.tag_pairs`` is NULL): its tag filters take the probe of ``image_tags``.
TAG_KEYS = ["role", "n", "flag", "long-" + "k" * 600]
TAG_VALUES: list[Any] = ["", "db", "web", "42", 42, 7, True, False]
BILLING = ["x", "y"]
#: No shrinking: every step re-seeds a database (minutes); the failing query is in the message.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate]
#: Few distinct instants: ties on published_at are common, so the uuid tie-break matters.
PUBLISHED = ["2021-01-01T00:00:00.000Z", "2021-06-01T12:00:00.500Z", "2022-01-01T00:00:00.000Z"]
EPOCH = "1970-01-01T00:00:00.000Z"
KINDS = ["active", "disabled", "unactivated", "creating", "failed"]
STATES = ["active", "disabled", "unactivated", "creating", "failed", "all"]
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Img:
    uuid: str
    owner: str
    kind: str  # one of KINDS
    public: bool
    name: str
    version: str
    os: str
    type: str
    tags: dict[str, Any]
    acl: tuple[str, ...]
    billing_tags: tuple[str, ...]
    published_at: str | None

    @property
    def activated(self) -> bool:
        return self.kind in ("active", "disabled")

    @property
    def disabled(self) -> bool:
        return self.kind == "disabled"

    def record(self) -> dict[str, Any]:
        """The stored form (what an imported/activated image looks like in the catalog)."""
        rec: dict[str, Any] = {
            "v": 2,
            "uuid": self.uuid,
            "name": self.name,
            "version": self.version,
            "owner": self.owner,
            "public": self.public,
            "activated": self.activated,
            "disabled": self.disabled,
            "state": self.kind,
            "os": self.os,
            "type": self.type,
            "tags": self.tags,
            # the stored search array (what create/import derive from the tags)
            "tags_search": [f"{k}={tag_search_value(v)}" for k, v in self.tags.items()],
            "acl": list(self.acl),
            "billing_tags": list(self.billing_tags),
            "files": [{"stor": "local", "sha1": "0" * 40, "size": 1, "compression": "none"}],
        }
        if self.kind == "failed":
            rec["error"] = {"message": "failed"}
        if self.published_at is not None:
            rec["published_at"] = self.published_at
        return rec


@st.composite
def images(draw: st.DrawFn) -> Img:
    kind = draw(st.sampled_from(KINDS))
    activated = kind in ("active", "disabled")
    return Img(
        uuid=str(draw(st.uuids(version=4))),
        owner=draw(st.sampled_from(ACCOUNTS)),
        kind=kind,
        public=draw(st.booleans()),
        name=draw(st.sampled_from(NAMES)),
        version=draw(st.sampled_from(VERSIONS)),
        os=draw(st.sampled_from(OSES)),
        type=draw(st.sampled_from(TYPES)),
        tags=draw(st.dictionaries(st.sampled_from(TAG_KEYS), st.sampled_from(TAG_VALUES), max_size=2)),
        acl=tuple(draw(st.lists(st.sampled_from(ACCOUNTS), max_size=2, unique=True))),
        billing_tags=tuple(draw(st.lists(st.sampled_from(BILLING), max_size=2, unique=True))),
        published_at=draw(st.sampled_from(PUBLISHED)) if activated else None,
    )


datasets = st.lists(images(), min_size=1, max_size=18, unique_by=lambda i: i.uuid)


@dataclass
class Query:
    account: str | None = None
    owner: str | None = None
    state: str = ""
    name: str = ""
    version: str = ""
    os: str = ""
    type: str = ""
    public: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    billing_tags: list[str] = field(default_factory=list)
    sort: str = ""
    limit: str = ""
    marker: str = ""

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: v for k, v in vars(self).items() if k not in ("account", "tags", "billing_tags") and v
        }
        if self.owner is None:
            out.pop("owner", None)
        if self.tags:
            out["tags"] = self.tags
        if self.billing_tags:
            out["billing_tags"] = self.billing_tags
        return out


def queries(dataset: list[Img]) -> st.SearchStrategy[Query]:
    """A query using a few of the parameters at a time (so that results are rarely empty)."""
    text_match = st.one_of(
        st.sampled_from(NAMES), st.sampled_from(["~ase", "~base", "~B", "~", "~64", "~1.0", "~.0", "~2"])
    )
    markers = st.one_of(
        st.sampled_from([i.uuid for i in dataset]),
        st.sampled_from([*PUBLISHED, "2021-03-01T00:00:00Z", "2021-06-01T12:00:00.500Z", "2030-01-01"]),
    )
    params: dict[str, st.SearchStrategy[Any]] = {
        "owner": st.sampled_from([*ACCOUNTS, STRANGER]),
        "state": st.sampled_from(STATES),
        "name": text_match,
        "version": st.one_of(st.sampled_from(VERSIONS), text_match),
        "os": st.sampled_from(OSES),
        "type": st.one_of(st.sampled_from(TYPES), st.sampled_from(TYPES).map(lambda t: "!" + t)),
        "public": st.sampled_from(["true", "false"]),
        "tags": st.dictionaries(
            st.sampled_from(TAG_KEYS),
            st.sampled_from(["", "", "db", "db", "web", "42", "7", "true", "false"]),
            min_size=1,
            max_size=2,
        ),
        "billing_tags": st.lists(st.sampled_from(BILLING), min_size=1, max_size=2, unique=True),
        "sort": st.sampled_from(
            ["published_at", "published_at.asc", "published_at.ASC", "published_at.desc"]
        ),
        "limit": st.sampled_from(["0", "1", "2", "3", "5", "1500"]),
        "marker": markers,
    }

    @st.composite
    def build(draw: st.DrawFn) -> Query:
        chosen = draw(st.lists(st.sampled_from(sorted(params)), max_size=4, unique=True))
        q = Query(account=draw(st.one_of(st.none(), st.sampled_from([*ACCOUNTS, STRANGER]))))
        for name in chosen:
            setattr(q, name, draw(params[name], label=name))
        return q

    return build()


# --- the model ---------------------------------------------------------------------------------


def tag_search_value(v: Any) -> str:
    """The search form of a tag value: strings as is, numbers and booleans as JavaScript prints them."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return v if isinstance(v, str) and len(v) <= 100 else ""


def state_ok(img: Img, state: str) -> bool:
    if state == "active":
        return img.activated and not img.disabled
    if state == "disabled":
        return img.activated and img.disabled
    if state == "unactivated":
        return not img.activated
    if state in ("creating", "failed"):
        return img.kind == state
    return True  # all


def restricted_state_ok(img: Img, state: str) -> bool:
    """Images seen through publicity or an ACL: activated ones only."""
    if state == "active":
        return img.activated and not img.disabled
    if state == "all":
        return img.activated
    return False


def text_ok(value: str, want: str) -> bool:
    return want[1:] in value if want.startswith("~") else value == want


def filters_ok(img: Img, q: Query) -> bool:
    if q.name and not text_ok(img.name, q.name):
        return False
    if q.version and not text_ok(img.version, q.version):
        return False
    if q.os and img.os != q.os:
        return False
    if q.type and (img.type == q.type[1:] if q.type.startswith("!") else img.type != q.type):
        return False
    for k, v in q.tags.items():
        if k not in img.tags or tag_search_value(img.tags[k]) != v:
            return False
    return all(b in img.billing_tags for b in q.billing_tags)


def visible(img: Img, q: Query, state: str) -> bool:
    public = None if q.public == "" else q.public == "true"
    public_ok = public is None or img.public == public
    if q.account is None:
        return (q.owner is None or img.owner == q.owner) and public_ok and state_ok(img, state)
    a = q.account
    own = img.owner == a and public_ok and state_ok(img, state)
    if q.owner == a:
        return own
    shared = state not in ("unactivated", "disabled")
    owner_ok = q.owner is None or img.owner == q.owner
    via_public = (
        shared and public is not False and owner_ok and img.public and restricted_state_ok(img, state)
    )
    via_acl = (
        shared
        and public is not True
        and owner_ok
        and not img.public
        and restricted_state_ok(img, state)
        and a in img.acl
    )
    return (q.owner is None and own) or via_public or via_acl


def expected(dataset: list[Img], q: Query) -> list[str]:
    state = q.state or "active"
    descending = q.sort not in ("", "published_at", "published_at.asc", "published_at.ASC")
    limit = int(q.limit) if q.limit else 0
    limit = MAX_LIMIT if limit == 0 else min(limit, MAX_LIMIT)
    hits = [i for i in dataset if visible(i, q, state) and filters_ok(i, q)]

    def key(i: Img) -> tuple[str, str]:
        return (i.published_at or EPOCH, i.uuid)

    if q.marker:
        by_uuid = {i.uuid: i for i in dataset}
        if q.marker in by_uuid:
            mk = key(by_uuid[q.marker])
            hits = [i for i in hits if (key(i) <= mk if descending else key(i) >= mk)]
        else:
            instant = normalize_date(q.marker)
            hits = [
                i
                for i in hits
                if i.published_at is not None
                and (i.published_at <= instant if descending else i.published_at >= instant)
            ]
    hits.sort(key=key, reverse=descending)
    return [i.uuid for i in hits[:limit]]


def normalize_date(text: str) -> str:
    """The marker dates the strategy uses, as comparable ISO strings with milliseconds."""
    if len(text) == 10:
        return text + "T00:00:00.000Z"
    if text.endswith("Z") and "." not in text:
        return text[:-1] + ".000Z"
    return text


# --- the test ----------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def model_catalog(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Catalog]:
    tmp: Path = tmp_path_factory.mktemp("model")
    with (
        database(request.param, tmp) as url,
        running_catalog(url, request.param, mode="dc", admin_uuid=SDC) as cat,
    ):
        yield cat


def wipe(cat: Catalog) -> None:
    for u in list_uuids(cat, state="all", limit="1000"):
        cat.call("DeleteImage", caller=caller(), uuid=u)
    assert list_uuids(cat, state="all") == []


QUERIES_PER_DATASET = 30


def test_list_images_matches_the_model(model_catalog: Catalog) -> None:
    cat = model_catalog
    examples = 25 if cat.backend == "sqlite" else 12

    @settings(
        max_examples=examples,
        phases=PHASES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(dataset=datasets, data=st.data())
    def run(dataset: list[Img], data: st.DataObject) -> None:
        wipe(cat)
        cat.service.store_many([i.record() for i in dataset])
        # every generated record is valid: the operator sees all of them
        assert sorted(list_uuids(cat, state="all")) == sorted(i.uuid for i in dataset)
        for _ in range(QUERIES_PER_DATASET):
            q = data.draw(queries(dataset), label="query")
            got = list_uuids(cat, q.account or "", **q.fields())
            assert got == expected(dataset, q), q

    run()


def test_marker_loop_walks_every_page_exactly_once(model_catalog: Catalog) -> None:
    """The client's loop (inclusive marker, drop the first item when it is the marker) visits each
    visible image once, in order, for any page size, on datasets with published_at ties."""
    cat = model_catalog

    @settings(max_examples=8 if cat.backend == "sqlite" else 4, phases=PHASES, deadline=None, database=None)
    @given(
        dataset=datasets,
        page=st.integers(2, 4),
        desc=st.booleans(),
        account=st.sampled_from([None, *ACCOUNTS]),
    )
    def run(dataset: list[Img], page: int, desc: bool, account: str | None) -> None:
        wipe(cat)
        cat.service.store_many([i.record() for i in dataset])
        sort = "published_at.desc" if desc else "published_at"
        q = Query(account=account, state="all", sort=sort)
        want = expected(dataset, q)
        seen: list[str] = []
        marker = ""
        while True:
            raw = list_uuids(cat, account or "", state="all", sort=sort, limit=str(page), marker=marker)
            seen += raw[1:] if marker and raw and raw[0] == marker else raw
            if len(raw) < page:  # a short page is the last one
                break
            marker = raw[-1]
        assert seen == want

    run()


def test_model_is_not_vacuous() -> None:
    """The oracle distinguishes the corrected ``tag.KEY=`` rule from the old "any value" one."""
    a = Img(
        str(uuidlib.uuid4()),
        ACCOUNTS[0],
        "active",
        True,
        "base",
        "1.0.0",
        "smartos",
        "other",
        {"role": "db"},
        (),
        (),
        PUBLISHED[0],
    )
    b = Img(
        str(uuidlib.uuid4()),
        ACCOUNTS[0],
        "active",
        True,
        "base",
        "1.0.0",
        "smartos",
        "other",
        {"role": ""},
        (),
        (),
        PUBLISHED[0],
    )
    assert expected([a, b], Query(tags={"role": ""})) == [b.uuid]


# --- the same oracle through the REST gateway, on both shapes -------------------------------------


def http_params(q: Query) -> list[tuple[str, str | int | float | bool | None]]:
    """The query string IMGAPI clients send for ``q`` (``tag.KEY``, repeated ``billing_tag``)."""
    out: list[tuple[str, str | int | float | bool | None]] = [
        (k, v) for k, v in q.fields().items() if k not in ("tags", "billing_tags")
    ]
    if q.account is not None:
        out.append(("account", q.account))
    out += [(f"tag.{k}", v) for k, v in q.tags.items()]
    out += [("billing_tag", b) for b in q.billing_tags]
    return out


@pytest.fixture(scope="module", params=SHAPES)
def model_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(
        tmp_path_factory.mktemp("model-http"), mode="dc", shape=Shape.of(request, request.param)
    )
    yield stack
    stack.stop()


def test_list_images_over_http_matches_the_model(model_stack: Stack) -> None:
    """ListImages' query parameters as the gateway parses them: same results as the model."""
    examples = 10 if model_stack.shape == "embedded" else 6

    with model_stack.client(**{"Accept-Version": "*"}) as c:

        def listed(params: list[tuple[str, str | int | float | bool | None]]) -> list[str]:
            r = c.get("/images", params=params)
            assert r.status_code == 200, r.text
            return [i["uuid"] for i in r.json()]

        @settings(max_examples=examples, phases=PHASES, deadline=None, database=None)
        @given(dataset=datasets, data=st.data())
        def run(dataset: list[Img], data: st.DataObject) -> None:
            for u in listed([("state", "all")]):
                assert c.delete(f"/images/{u}").status_code == 204
            model_stack.catalog.store_many([i.record() for i in dataset])
            for _ in range(QUERIES_PER_DATASET):
                q = data.draw(queries(dataset), label="query")
                assert listed(http_params(q)) == expected(dataset, q), q

        run()
