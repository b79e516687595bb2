"""Properties of the gateway's header parsers, through their public functions: the HTTP Signature
``Authorization`` header, tus ``Upload-Metadata`` and upload ids, ``Range``/``If-Range``, and
``Accept-Version`` negotiation. (Accept-Version is also checked against node-semver itself in
tests/compat/test_semver_vs_node.py.)"""

from __future__ import annotations

import base64
import string

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from gateway.http.auth import parse_authorization
from gateway.http.conditional import if_range_matches
from gateway.http.ranges import ByteRange, MalformedRange, RangeNotSatisfiable, parse_range
from gateway.http.versions import negotiate, satisfies
from gateway.routes.tus import UploadRef, parse_metadata
from imgapi_common.errors import ImgapiError

# --- Authorization: Signature keyId="...",algorithm="...",signature="..." -------------------------

param_names = st.text(alphabet=string.ascii_letters, min_size=1, max_size=12)
param_values = st.text(alphabet=st.characters(exclude_characters='"', codec="utf-8"), max_size=40)
spaces = st.sampled_from(["", " ", "  ", "\t"])


@st.composite
def signature_headers(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    params = draw(st.dictionaries(param_names, param_values, max_size=5))
    for required in ("keyId", "algorithm", "signature"):
        params[required] = draw(param_values.filter(bool))
    items = list(params.items())
    draw(st.randoms()).shuffle(items)
    sep = draw(spaces)
    text = ",".join(f'{sep}{k}{draw(spaces)}={draw(spaces)}"{v}"' for k, v in items)
    scheme = draw(st.sampled_from(["Signature", "signature", "SIGNATURE"]))
    return f"{scheme} {text}", params


@settings(max_examples=300)
@given(signature_headers())
def test_signature_parameters_parse_back(header: tuple[str, dict[str, str]]) -> None:
    text, params = header
    assert parse_authorization(text) == params


@settings(max_examples=200)
@given(signature_headers(), st.sampled_from(["keyId", "algorithm", "signature"]))
def test_a_missing_required_parameter_is_401(header: tuple[str, dict[str, str]], missing: str) -> None:
    _, params = header
    del params[missing]
    text = "Signature " + ",".join(f'{k}="{v}"' for k, v in params.items())
    with pytest.raises(ImgapiError) as e:
        parse_authorization(text)
    assert (e.value.code, e.value.http_status, e.value.message) == (
        "UnauthorizedError",
        401,
        f"{missing} was not specified",
    )


@settings(max_examples=200)
@given(st.sampled_from(["Basic", "Bearer", "", "Sig", "Signatures"]), st.text(max_size=40))
def test_other_schemes_are_401(scheme: str, rest: str) -> None:
    with pytest.raises(ImgapiError) as e:
        parse_authorization(f"{scheme} {rest}")
    assert (e.value.code, e.value.http_status) == ("UnauthorizedError", 401)


@settings(max_examples=500)
@given(st.text(max_size=80))
@example('Signature keyId="a",algorithm="b",signature="c" junk')
@example('Signature keyId="a" algorithm="b"')
@example('Signature keyId=a,algorithm="b",signature="c"')
def test_any_header_parses_or_is_a_clean_401(text: str) -> None:
    try:
        params = parse_authorization(text)
    except ImgapiError as e:
        assert (e.code, e.http_status) == ("UnauthorizedError", 401)
    else:
        assert all(params.get(k) for k in ("keyId", "algorithm", "signature"))
        assert text.strip().lower().startswith("signature ")


# --- tus: Upload-Metadata and upload ids --------------------------------------------------------

metadata_keys = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=12)


@settings(max_examples=300)
@given(st.dictionaries(metadata_keys, st.text(max_size=30), max_size=5), spaces)
def test_upload_metadata_round_trips(meta: dict[str, str], sep: str) -> None:
    header = f",{sep}".join(
        f"{k} {base64.b64encode(v.encode()).decode()}" if v else k for k, v in meta.items()
    )
    assert parse_metadata(header) == meta


@settings(max_examples=200)
@given(metadata_keys, st.text(alphabet="!@#$%^&*()", min_size=1, max_size=8))
def test_upload_metadata_with_bad_base64_is_400(key: str, value: str) -> None:
    with pytest.raises(ImgapiError) as e:
        parse_metadata(f"{key} {value}")
    assert (e.value.code, e.value.http_status) == ("BadRequestError", 400)


refs = st.builds(
    UploadRef,
    upload_id=st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
    uuid=st.uuids().map(str),
    length=st.integers(0, 2**40),
    compression=st.sampled_from(["none", "gzip", "bzip2", "xz"]),
    sha1=st.one_of(st.none(), st.text(alphabet="0123456789abcdef", min_size=40, max_size=40)),
    dataset_guid=st.one_of(st.none(), st.uuids().map(str)),
    storage=st.sampled_from(["", "local"]),
)


@settings(max_examples=200)
@given(refs)
def test_upload_ids_round_trip_and_are_bound_to_their_image(ref: UploadRef) -> None:
    token = ref.encode()
    assert UploadRef.decode(token, ref.uuid) == ref
    with pytest.raises(ImgapiError) as e:
        UploadRef.decode(token, "00000000-0000-4000-8000-000000000000")
    assert e.value.code == "ResourceNotFound"


@settings(max_examples=300)
@given(st.text(max_size=60), st.uuids().map(str))
def test_any_upload_id_decodes_or_is_404(token: str, uuid: str) -> None:
    try:
        UploadRef.decode(token, uuid)
    except ImgapiError as e:
        assert (e.code, e.http_status) == ("ResourceNotFound", 404)


# --- Range ---------------------------------------------------------------------------------------

UNSATISFIABLE = "416"


def outcome(header: str | None, size: int) -> tuple[int, int] | str | None:
    """What a GET with ``header`` serves: None (the whole file), UNSATISFIABLE, or (first, last)."""
    if header is None:
        return None
    try:
        r = parse_range(header, size)
    except MalformedRange as e:
        assert e.header == header
        return None
    except RangeNotSatisfiable as e:
        assert e.size == size and e.content_range == f"bytes */{size}"
        return UNSATISFIABLE
    assert isinstance(r, ByteRange) and r.size == size
    assert r.length == r.last - r.first + 1 and r.content_range == f"bytes {r.first}-{r.last}/{size}"
    return (r.first, r.last)


sizes = st.integers(0, 10_000)
offsets = st.integers(0, 12_000)
unit = st.sampled_from(["bytes", "BYTES", "Bytes"])


@settings(max_examples=500)
@given(sizes, offsets, offsets, unit, spaces)
def test_a_closed_range(size: int, first: int, last: int, u: str, sp: str) -> None:
    got = outcome(f"{u}={sp}{first}{sp}-{sp}{last}{sp}", size)
    if last < first:
        assert got is None  # an invalid spec is ignored: the whole file is served
    elif first >= size:
        assert got == UNSATISFIABLE
    else:
        assert got == (first, min(last, size - 1))


@settings(max_examples=300)
@given(sizes, offsets)
def test_an_open_range(size: int, first: int) -> None:
    got = outcome(f"bytes={first}-", size)
    assert got == (UNSATISFIABLE if first >= size else (first, size - 1))


@settings(max_examples=300)
@given(sizes, offsets)
def test_a_suffix_range(size: int, n: int) -> None:
    got = outcome(f"bytes=-{n}", size)
    assert got == (UNSATISFIABLE if n == 0 or size == 0 else (max(0, size - n), size - 1))


@settings(max_examples=200)
@given(sizes, offsets, offsets, st.sampled_from(["items", "bits", "byte", "", " "]))
def test_other_units_are_ignored(size: int, first: int, last: int, u: str) -> None:
    assert outcome(f"{u}={first}-{last}", size) is None
    assert outcome(f"{u}={first}-", size) is None


@settings(max_examples=300)
@given(sizes, st.lists(st.tuples(offsets, offsets), min_size=2, max_size=3))
def test_multiple_ranges_are_ignored(size: int, ranges: list[tuple[int, int]]) -> None:
    assert outcome("bytes=" + ",".join(f"{a}-{b}" for a, b in ranges), size) is None


@settings(max_examples=500)
@given(st.one_of(st.none(), st.text(max_size=30)), sizes)
@example("items=0-5", 10)
@example("bytes=-", 10)
@example("bytes=5", 10)
def test_any_range_header_is_served_whole_partial_or_416(header: str | None, size: int) -> None:
    got = outcome(header, size)
    if isinstance(got, tuple):
        first, last = got
        assert 0 <= first <= last < size


@settings(max_examples=200)
@given(st.text(alphabet="0123456789abcdef", min_size=8, max_size=40))
def test_if_range_needs_the_exact_strong_etag(etag: str) -> None:
    date = "Wed, 01 May 2024 12:00:00 GMT"
    assert if_range_matches(None, etag, date)
    assert if_range_matches(f'"{etag}"', etag, date)
    assert not if_range_matches(f'W/"{etag}"', etag, date)
    assert not if_range_matches(f'"{etag}x"', etag, date)
    assert if_range_matches(date, etag, date)
    assert not if_range_matches("Wed, 01 May 2024 12:00:01 GMT", etag, date)


# --- Accept-Version --------------------------------------------------------------------------------

numbers = st.integers(0, 4).map(str)
wild = st.sampled_from(["x", "X", "*"])
partials = st.one_of(
    wild,
    numbers,
    st.tuples(numbers, st.one_of(numbers, wild)).map(".".join),
    st.tuples(numbers, numbers, st.one_of(numbers, wild)).map(".".join),
)
ops = st.sampled_from(["", "=", "<", "<=", ">", ">=", "~", "^", "~>"])
comparators = st.tuples(ops, partials).map("".join)
simple_ranges = st.one_of(
    st.lists(comparators, min_size=1, max_size=3).map(" ".join),
    st.tuples(partials, partials).map(" - ".join),
)
ranges = st.lists(simple_ranges, min_size=1, max_size=3).map(" || ".join)


@settings(max_examples=500)
@given(ranges)
def test_negotiation_serves_when_a_server_version_satisfies(text: str) -> None:
    got = negotiate(text)
    v1, v2 = satisfies((1, 0, 0), text), satisfies((2, 0, 0), text)
    if not (v1 or v2):
        assert got is None
    else:
        assert got is not None and got.include_channels == (text.strip() == "*" or v2)


@settings(max_examples=300)
@given(ranges, ranges)
def test_a_union_is_satisfied_when_either_side_is(a: str, b: str) -> None:
    for v in ((1, 0, 0), (2, 0, 0), (1, 2, 3), (0, 0, 1)):
        assert satisfies(v, f"{a} || {b}") == (satisfies(v, a) or satisfies(v, b))


@settings(max_examples=300)
@given(st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4)))
def test_exact_versions_and_their_neighbourhoods(v: tuple[int, int, int]) -> None:
    text = ".".join(map(str, v))
    assert satisfies(v, text) and satisfies(v, "=" + text) and satisfies(v, f">={text}")
    assert not satisfies(v, f">{text}") and not satisfies(v, f"<{text}")
    assert satisfies(v, f"~{v[0]}.{v[1]}") and satisfies(v, f"{v[0]}.x") and satisfies(v, "*")
    assume(v[0] > 0)
    assert satisfies(v, f"^{v[0]}") and not satisfies(v, f"^{v[0] + 1}")


@pytest.mark.parametrize("header", ["~3", "~99", "garbage", ">=3", "1.2.3.4", "<1"])
def test_unsatisfiable_or_invalid_ranges_are_refused(header: str) -> None:
    assert negotiate(header) is None


# node-semver's range rules, restated over release versions (tuples compare as versions do).
triples = st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4))
op_variants = st.sampled_from(["", " "])  # node-semver allows a space after the operator


def _s(v: tuple[int, ...]) -> str:
    return ".".join(map(str, v))


@settings(max_examples=400)
@given(triples, triples, triples)
def test_hyphen_ranges_are_inclusive_bounds(
    v: tuple[int, int, int], a: tuple[int, int, int], b: tuple[int, int, int]
) -> None:
    assert satisfies(v, f"{_s(a)} - {_s(b)}") == (a <= v <= b)
    # a partial upper bound includes everything it names: "1.2.3 - 2.3" = ">=1.2.3 <2.4.0"
    assert satisfies(v, f"{_s(a)} - {_s(b[:2])}") == (a <= v < (b[0], b[1] + 1, 0))
    assert satisfies(v, f"{_s(a[:1])} - {_s(b[:1])}") == ((a[0], 0, 0) <= v < (b[0] + 1, 0, 0))


@settings(max_examples=400)
@given(triples, triples, st.sampled_from(["~", "~>"]), op_variants)
def test_tilde_ranges(v: tuple[int, int, int], t: tuple[int, int, int], op: str, sp: str) -> None:
    assert satisfies(v, f"{op}{sp}{_s(t)}") == (t <= v < (t[0], t[1] + 1, 0))
    assert satisfies(v, f"{op}{sp}{_s(t[:2])}") == ((t[0], t[1], 0) <= v < (t[0], t[1] + 1, 0))
    assert satisfies(v, f"{op}{sp}{t[0]}") == ((t[0], 0, 0) <= v < (t[0] + 1, 0, 0))


@settings(max_examples=400)
@given(triples, triples, op_variants)
def test_caret_ranges(v: tuple[int, int, int], t: tuple[int, int, int], sp: str) -> None:
    a, b, c = t
    high = (a + 1, 0, 0) if a > 0 else (0, b + 1, 0) if b > 0 else (0, 0, c + 1)
    assert satisfies(v, f"^{sp}{_s(t)}") == (t <= v < high)
    high2 = (a + 1, 0, 0) if a > 0 else (0, b + 1, 0)
    assert satisfies(v, f"^{sp}{a}.{b}") == ((a, b, 0) <= v < high2)
    assert satisfies(v, f"^{sp}{a}") == ((a, 0, 0) <= v < (a + 1, 0, 0))


@settings(max_examples=400)
@given(triples, triples, op_variants)
def test_comparators_on_full_and_partial_versions(
    v: tuple[int, int, int], t: tuple[int, int, int], sp: str
) -> None:
    a, b, _ = t
    assert satisfies(v, f"<{sp}{_s(t)}") == (v < t)
    assert satisfies(v, f"<={sp}{_s(t)}") == (v <= t)
    assert satisfies(v, f">{sp}{_s(t)}") == (v > t)
    assert satisfies(v, f">={sp}{_s(t)}") == (v >= t)
    assert satisfies(v, f"={sp}{_s(t)}") == satisfies(v, _s(t)) == (v == t)
    # partial versions cover every version they name
    assert satisfies(v, f"{a}.{b}") == satisfies(v, f"{a}.{b}.x") == ((a, b) == v[:2])
    assert satisfies(v, f"{a}") == satisfies(v, f"{a}.x.x") == satisfies(v, f"={a}") == (a == v[0])
    assert satisfies(v, f"<{a}.{b}") == (v < (a, b, 0))
    assert satisfies(v, f"<={a}.{b}") == (v < (a, b + 1, 0))
    assert satisfies(v, f">{a}.{b}") == (v >= (a, b + 1, 0))
    assert satisfies(v, f">={a}.{b}") == (v >= (a, b, 0))
    assert satisfies(v, f"<{a}") == (v < (a, 0, 0))
    assert satisfies(v, f"<={a}") == (v < (a + 1, 0, 0))
    assert satisfies(v, f">{a}") == (v >= (a + 1, 0, 0))
    assert satisfies(v, f">={a}") == (v >= (a, 0, 0))
    # an intersection: every comparator must hold
    assert satisfies(v, f">={_s(t)} <{a + 1}") == (t <= v < (a + 1, 0, 0))


@settings(max_examples=100)
@given(triples, st.sampled_from(["*", "x", "X", ">=*", "", "  ", "<=*", "=*"]))
def test_wildcards_admit_every_release(v: tuple[int, int, int], text: str) -> None:
    assert satisfies(v, text)
    assert not satisfies(v, "<*") and not satisfies(v, ">*")
