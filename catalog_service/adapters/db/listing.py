"""ListImages as one SQL query: filters, ``account`` visibility, marker, sort and limit.

Everything runs in the database on indexed columns; only the returned page is
loaded into Python. A query's statement depends only on its shape (which filters, which state,
which sort; :func:`_shape`), so it is built once per shape and run with the values as parameters:
building it took ~0.6 ms, more than the SQL of a page of 100 images.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Any, Literal

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    false,
    func,
    not_,
    or_,
    select,
    text,
    true,
)

from catalog_service.adapters.db.rows import tag_pair_needle
from catalog_service.adapters.db.schema import (
    image_acl,
    image_billing_tags,
    image_channels,
    image_docs,
    image_tags,
    images,
)

State = Literal["active", "disabled", "unactivated", "creating", "failed", "all"]


@dataclass(frozen=True)
class TextMatch:
    value: str
    substring: bool = False  # "~value"
    negate: bool = False  # "!value" (type only)


@dataclass(frozen=True)
class ListQuery:
    state: State = "active"
    account: str | None = None
    owner: str | None = None
    name: TextMatch | None = None
    version: TextMatch | None = None
    os: str | None = None
    type: TextMatch | None = None
    public: bool | None = None
    tags: tuple[tuple[str, str], ...] = ()
    billing_tags: tuple[str, ...] = ()
    channel: str | None = None
    limit: int = 1000
    descending: bool = False
    #: (published_sort, uuid) of a marker image, or (date, None) for a date marker.
    marker: tuple[str, str | None] | None = None
    #: A tag filter (``(key, value)``) or billing tag (``(None, tag)``) carried by so few images
    #: that the query should start from them instead of walking every image in order and probing
    #: each (chosen by the repository from a bounded count).
    driver: tuple[str | None, str] | None = None


def _state_condition(state: State) -> ColumnElement[bool]:
    c = images.c
    if state == "active":
        return and_(c.activated, not_(c.disabled))
    if state == "disabled":
        return and_(c.activated, c.disabled)
    if state == "unactivated":
        return not_(c.activated)
    if state in ("creating", "failed"):
        return c.state == state
    return true()


def _restricted_state(state: State) -> ColumnElement[bool]:
    """The state condition for images seen through publicity or the ACL (activated only)."""
    c = images.c
    if state == "active":
        return and_(c.activated, not_(c.disabled))
    if state == "all":
        return c.activated
    return false()


def _v(name: str) -> BindParameter[Any]:
    """The parameter a shaped query names in place of a value (see :func:`_shape`)."""
    return bindparam(name)


def _text(column: ColumnElement[str], m: TextMatch, dialect: str) -> ColumnElement[bool]:
    value = _v(m.value)
    if m.substring:
        fn = func.instr(column, value) if dialect == "sqlite" else func.strpos(column, value)
        cond: ColumnElement[bool] = fn > 0
    else:
        cond = column == value
    return not_(cond) if m.negate else cond


def _tagged(key: str, value: str) -> Select[Any]:
    """The images tagged ``key: value`` (parameters named ``key`` and ``value``)."""
    t = image_tags.c
    return select(t.image_uuid).where(t.key == _v(key), t.value == _v(value))


def _billed(tag: str) -> Select[Any]:
    """The images carrying billing tag ``tag`` (a parameter name)."""
    b = image_billing_tags.c
    return select(b.image_uuid).where(b.tag == _v(tag))


def _carrying(images_of: Select[Any], *, driven: bool) -> ColumnElement[bool]:
    """An image is among ``images_of`` (a SELECT of one ``image_uuid`` column). A correlated
    EXISTS probe keeps the ordered walk of the listing index, right for a filter most images pass;
    the driver (a rare tag) is an IN instead: the images carrying it are looked up and sorted (a
    rare tag at 100k images: 290 ms walked, 1.4 ms driven)."""
    if driven:
        return images.c.uuid.in_(images_of)
    carried = images_of.selected_columns[0]
    return images_of.where(carried == images.c.uuid).exists()


def _tag_probe(key: str, value: str, pair: str, dialect: str) -> ColumnElement[bool]:
    """An image walked in order carries tag ``key: value``: tested on its ``tag_pairs`` (a column
    of the listing indexes: no lookup at all) for ``pair`` (:func:`tag_pair_needle`), or by a probe
    of ``image_tags`` where the pairs were too long to keep. A third of 100k images tagged, limit
    1000, PostgreSQL: 21.7 ms of SQL with a probe per image, 8.7 ms without."""
    c = images.c
    pairs = c.tag_pairs
    found = func.instr(pairs, _v(pair)) if dialect == "sqlite" else func.strpos(pairs, _v(pair))
    return case((pairs.is_(None), _carrying(_tagged(key, value), driven=False)), else_=found > 0)


def _filters(q: ListQuery, dialect: str) -> list[ColumnElement[bool]]:
    c = images.c
    conds: list[ColumnElement[bool]] = [c.valid]
    if q.name is not None:
        conds.append(_text(c.name, q.name, dialect))
    if q.version is not None:
        conds.append(_text(c.version, q.version, dialect))
    if q.os is not None:
        conds.append(c.os == _v(q.os))
    if q.type is not None:
        conds.append(_text(c.type, q.type, dialect))
    # ``tag.KEY=`` (empty value) is an exact match on the empty string like any other value: an
    # image tagged ``KEY: "db"`` does not match it.
    for i, (key, value) in enumerate(q.tags):
        if q.driver == (key, value):
            conds.append(_carrying(_tagged(key, value), driven=True))
        else:
            conds.append(_tag_probe(key, value, _pair_param(i), dialect))
    for tag in q.billing_tags:
        conds.append(_carrying(_billed(tag), driven=q.driver == (None, tag)))
    if q.channel is not None:
        ch = image_channels.c
        conds.append(
            select(ch.image_uuid).where(ch.image_uuid == c.uuid, ch.channel == _v(q.channel)).exists()
        )
    if q.marker is not None:
        sort_key = _v(q.marker[0])
        marker_uuid = None if q.marker[1] is None else _v(q.marker[1])
        if marker_uuid is None:  # a date marker: images without published_at never pass
            conds.append(c.has_published_at)
            conds.append(c.published_sort <= sort_key if q.descending else c.published_sort >= sort_key)
        elif q.descending:
            conds.append(
                or_(c.published_sort < sort_key, and_(c.published_sort == sort_key, c.uuid <= marker_uuid))
            )
        else:
            conds.append(
                or_(c.published_sort > sort_key, and_(c.published_sort == sort_key, c.uuid >= marker_uuid))
            )
    return conds


def _in_acl(account: BindParameter[Any]) -> ColumnElement[bool]:
    return images.c.uuid.in_(select(image_acl.c.image_uuid).where(image_acl.c.account == account))


def _visibility(q: ListQuery) -> ColumnElement[bool] | None:
    """The owner/publicity/ACL part of the query (None: nothing can match)."""
    c = images.c
    state_cond = _state_condition(q.state)
    pub = true() if q.public is None else c.public == q.public
    if q.account is None:
        owner = true() if q.owner is None else c.owner == _v(q.owner)
        return and_(owner, pub, state_cond)
    a = _v(q.account)
    if q.owner is not None and q.owner == q.account:  # the same parameter (see _shape)
        return and_(c.owner == a, pub, state_cond)
    # With state=active, the caller's own images and those shared with it need the same state: it
    # is tested once, outside the OR, so that the walk of ix_images_state_order serves the whole
    # query. Inside the OR it made the planner walk every valid image in order, the unactivated
    # ones (which sort first) included: 25 ms instead of 0.6 ms for 100 images of 100,000.
    factored = q.state == "active"
    own_state = true() if factored else state_cond
    shared_state = true() if factored else _restricted_state(q.state)
    shared_states = q.state not in ("unactivated", "disabled")
    parts: list[ColumnElement[bool]] = []
    if q.owner is None:
        parts.append(and_(c.owner == a, pub, own_state))
    owner_cond = true() if q.owner is None else c.owner == _v(q.owner)
    if shared_states and q.public is not False:
        parts.append(and_(owner_cond, c.public, shared_state))
    if shared_states and q.public is not True:
        parts.append(and_(owner_cond, not_(c.public), shared_state, _in_acl(a)))
    if not parts:
        return None
    return and_(state_cond, or_(*parts)) if factored else or_(*parts)


def build_list_query(
    q: ListQuery, dialect: str, columns: tuple[Any, ...]
) -> tuple[Select[Any], dict[str, Any]] | None:
    """The SELECT of ``columns`` for one page and its parameters, or None when the result is
    empty by definition. ``columns`` are part of the statement's cache key: pass the same objects
    each time (not a new ``label()``)."""
    shape, params = _shape(q)
    stmt = _statement(shape, dialect, columns)
    return None if stmt is None else (stmt, params)


@functools.lru_cache(maxsize=1024)
def _statement(shape: ListQuery, dialect: str, columns: tuple[Any, ...]) -> Select[Any] | None:
    vis = _visibility(shape)
    if vis is None:
        return None
    c = images.c
    order = (c.published_sort.desc(), c.uuid.desc()) if shape.descending else (c.published_sort, c.uuid)
    return (
        select(*columns)
        .select_from(images.join(image_docs, image_docs.c.uuid == c.uuid))
        .where(vis, *_filters(shape, dialect))
        .order_by(*order)
        .limit(bindparam("limit", type_=Integer))
    )


def _pair_param(i: int) -> str:
    """The parameter carrying the ``tag_pairs`` needle of the ``i``-th tag filter."""
    return f"tag_pair_{i}"


def _shape(q: ListQuery) -> tuple[ListQuery, dict[str, Any]]:
    """``q`` with every value replaced by the name of the parameter that carries it (what the
    statement depends on), and the parameters. An owner equal to the account keeps the account's
    name: the statement differs in that case."""
    params: dict[str, Any] = {"limit": q.limit}

    def name(key: str, value: Any) -> str:
        params[key] = value
        return key

    def match(key: str, m: TextMatch | None) -> TextMatch | None:
        return None if m is None else TextMatch(name(key, m.value), m.substring, m.negate)

    tags = tuple((name(f"tag_key_{i}", k), name(f"tag_value_{i}", v)) for i, (k, v) in enumerate(q.tags))
    for i, (k, v) in enumerate(q.tags):
        name(_pair_param(i), tag_pair_needle(k, v))
    billing = tuple(name(f"billing_tag_{i}", t) for i, t in enumerate(q.billing_tags))
    driver: tuple[str | None, str] | None = None
    if q.driver is not None:
        key, value = q.driver
        driver = (
            (None, billing[q.billing_tags.index(value)]) if key is None else tags[q.tags.index((key, value))]
        )
    account = None if q.account is None else name("account", q.account)
    owner = None if q.owner is None else account if q.owner == q.account else name("owner", q.owner)
    marker = None
    if q.marker is not None:
        sort_key, marker_uuid = q.marker
        marker = (
            name("marker_sort", sort_key),
            None if marker_uuid is None else name("marker_uuid", marker_uuid),
        )
    shape = replace(
        q,
        account=account,
        owner=owner,
        name=match("name", q.name),
        version=match("version", q.version),
        os=None if q.os is None else name("os", q.os),
        type=match("type", q.type),
        tags=tags,
        billing_tags=billing,
        channel=None if q.channel is None else name("channel", q.channel),
        limit=0,
        marker=marker,
        driver=driver,
    )
    return shape, params


_IMAGES_ROWS = text("SELECT max(rowid) FROM images")  # SQLite: ~the number of images, one lookup


def _count_up_to(carrying: Select[Any]) -> Select[Any]:
    """How many images ``carrying`` finds, counting no further than the parameter ``bound``."""
    return select(func.count()).select_from(carrying.limit(bindparam("bound", type_=Integer)).subquery())


_COUNT_TAGGED = _count_up_to(_tagged("key", "value"))
_COUNT_BILLED = _count_up_to(_billed("tag"))


def with_driver(conn: Connection, q: ListQuery, dialect: str) -> ListQuery:
    """``q`` with its rarest tag filter as the driver when starting from it is cheaper than the
    ordered walk. Walking finds ``limit`` matches after about ``limit * N / k`` images when ``k``
    of ``N`` images carry the tag; starting from the tag costs about ``k``. So a tag drives when
    ``k * k < limit * N``, found with counts that stop at that bound.

    SQLite only: its statistics know the average number of images per tag, not per value, and
    it then starts from a common tag as readily as from a rare one (126 ms instead of 6 ms for a
    tag a third of 100k images carry). PostgreSQL's planner has per-value statistics and makes
    this choice itself (EXISTS and IN are the same semi-join to it)."""
    if dialect != "sqlite" or not (q.tags or q.billing_tags):
        return q
    work = q.limit * int(conn.execute(_IMAGES_ROWS).scalar() or 0)
    if work <= 0:
        return q
    bound = math.isqrt(work - 1) + 1  # the least k with k * k >= work: counting stops there
    candidates: list[tuple[tuple[str | None, str], Any, dict[str, Any]]] = [
        ((key, value), _COUNT_TAGGED, {"key": key, "value": value, "bound": bound}) for key, value in q.tags
    ]
    candidates += [((None, tag), _COUNT_BILLED, {"tag": tag, "bound": bound}) for tag in q.billing_tags]
    best: tuple[int, tuple[str | None, str]] | None = None
    for driver, counting, params in candidates:
        count = int(conn.execute(counting, params).scalar_one())
        if count < bound and (best is None or count < best[0]):
            best = (count, driver)
    return q if best is None else replace(q, driver=best[1])
