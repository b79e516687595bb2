"""Query strings parsed as IMGAPI parses them: node's ``qs`` library (what restify's query parser uses).

One parser for every route, so that no handler can pick "the first value" of a repeated parameter:

* ``a=1&a=2`` gives a list ``["1", "2"]``; ``a[]=1`` a list ``["1"]``; ``a[0]=x&a[1]=y`` a list;
  ``a[b]=1`` an object ``{"b": "1"}`` (up to 5 levels of brackets, indexes up to 20 as in ``qs``);
* ``+`` is a space, percent-escapes are decoded (an undecodable escape is kept as received);
* dotted keys stay verbatim (``tag.role`` is one key); at most 1000 parameters are read;
* an empty value is a value: ``owner=`` is the empty string, not "absent".

Handlers see each parameter through :class:`Query`: :meth:`Query.text` gives what JavaScript's
``String(value)`` gives (a list joins with ``,``: ``channel=dev&channel=staging`` reads
``dev,staging``), :meth:`Query.get` is that text when the value is JavaScript-truthy (the parameters
whose empty value means "use the default": ``action``, ``sha1``, ...), :meth:`Query.present` says
whether the key appeared at all.
"""

from __future__ import annotations

import re
from typing import Union
from urllib.parse import unquote

from imgapi_common.errors import FieldError, ImgapiError, invalid_parameter

#: A parsed value: a string, or (brackets, repetition) a list or an object of them.
QueryValue = Union[str, list["QueryValue"], dict[str, "QueryValue"]]  # noqa: UP007 (recursive alias)

#: ``qs`` defaults: parameterLimit, depth, arrayLimit.
PARAMETER_LIMIT = 1000
DEPTH = 5
ARRAY_LIMIT = 20

_BRACKET = re.compile(r"\[[^\[\]]*\]")


def _decode(s: str) -> str:
    s = s.replace("+", " ")
    if "%" not in s:
        return s
    try:
        return unquote(s, errors="strict")
    except UnicodeDecodeError:
        return s  # qs keeps a string decodeURIComponent cannot decode


def _combine(a: QueryValue, b: QueryValue) -> list[QueryValue]:
    left = a if isinstance(a, list) else [a]
    right = b if isinstance(b, list) else [b]
    return [*left, *right]


def _merge(target: QueryValue, source: QueryValue) -> QueryValue:
    """``qs``'s ``utils.merge`` for the shapes a query string can produce."""
    if isinstance(source, str):
        if isinstance(target, list):
            return [*target, source]
        if isinstance(target, dict):
            return {**target, source: "true"}
        return [target, source]
    if isinstance(target, str):
        return [target, *source] if isinstance(source, list) else [target, source]
    if isinstance(target, list) and isinstance(source, list):
        out = list(target)
        for item in source:
            out.append(item)
        return out
    base: dict[str, QueryValue] = (
        {str(i): v for i, v in enumerate(target)} if isinstance(target, list) else dict(target)
    )
    items = source.items() if isinstance(source, dict) else ((str(i), v) for i, v in enumerate(source))
    for k, v in items:
        base[k] = _merge(base[k], v) if k in base else v
    return base


def _key_chain(key: str) -> list[str]:
    """``a[b][]`` -> ``["a", "[b]", "[]"]`` (``qs``: at most DEPTH bracket groups, the rest as one)."""
    first = key.find("[")
    if first <= 0 or _BRACKET.match(key, first) is None:
        return [key]
    chain = [key[:first]]
    pos = first
    for _ in range(DEPTH):
        m = _BRACKET.match(key, pos)
        if m is None:
            break
        chain.append(m.group(0))
        pos = m.end()
    if pos < len(key):
        chain.append(f"[{key[pos:]}]")
    return chain


def _nest(chain: list[str], value: QueryValue) -> QueryValue:
    leaf = value
    for root in reversed(chain[1:]):
        if root == "[]":
            leaf = leaf if isinstance(leaf, list) else [leaf]
            continue
        inner = root[1:-1]
        if inner.isdigit() and str(int(inner)) == inner and int(inner) <= ARRAY_LIMIT:
            leaf = [leaf]  # qs places it at that index and compacts the holes away
        else:
            leaf = {inner: leaf}
    return leaf


def parse_query(raw: str) -> dict[str, QueryValue]:
    """The parameters of a raw query string (without ``?``), as ``qs.parse`` returns them."""
    flat: dict[str, QueryValue] = {}
    parts = [p for p in raw.split("&") if p][:PARAMETER_LIMIT]
    for part in parts:
        bracket_eq = part.find("]=")
        pos = part.find("=") if bracket_eq == -1 else bracket_eq + 1
        if pos == -1:
            key, val = _decode(part), ""
        else:
            key, val = _decode(part[:pos]), _decode(part[pos + 1 :])
        if not key:
            continue
        flat[key] = _combine(flat[key], val) if key in flat else val
    out: dict[str, QueryValue] = {}
    for key, flat_val in flat.items():
        chain = _key_chain(key)
        name = chain[0]
        nested = _nest(chain, flat_val)
        out[name] = _merge(out[name], nested) if name in out else nested
    return out


def not_a_boolean(name: str, text: str) -> ImgapiError:
    """IMGAPI's 422 for a boolean parameter that is neither ``true`` nor ``false`` (even empty)."""
    return invalid_parameter(
        f'invalid value for "{name}" param: "{text}" is not a boolean', [FieldError(name, "Invalid")]
    )


def js_string(value: QueryValue) -> str:
    """JavaScript's ``String(value)``: lists join with ``,``, objects are ``[object Object]``."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(js_string(v) for v in value)
    return "[object Object]"


def js_truthy(value: QueryValue | None) -> bool:
    """JavaScript truthiness: the empty string is false, any list or object (even empty) true."""
    return value is not None and (not isinstance(value, str) or value != "")


class Query:
    """One request's query parameters with IMGAPI's semantics (see the module docstring)."""

    def __init__(self, raw: str) -> None:
        self.raw_string = raw
        self.params = parse_query(raw)

    def value(self, name: str) -> QueryValue | None:
        """The parsed value (string, list or object); None when the key is absent."""
        return self.params.get(name)

    def present(self, name: str) -> bool:
        """The key appears at all (even ``?name=``)."""
        return name in self.params

    def text(self, name: str) -> str | None:
        """``String(value)`` as the reference would print or compare it; None when absent."""
        v = self.params.get(name)
        return None if v is None else js_string(v)

    def get(self, name: str) -> str | None:
        """The text of a JavaScript-truthy value; None when absent or the empty string.

        For parameters whose empty value means "not given" (``action``, ``source``, ``sha1``...).
        A repeated value is truthy: ``action=a&action=b`` reads ``a,b``, never ``a``."""
        v = self.params.get(name)
        return js_string(v) if v is not None and js_truthy(v) else None

    def raw(self, name: str) -> str:
        """The text ("" when absent): for parameters the catalog validates itself."""
        return self.text(name) or ""

    def all(self, name: str) -> list[str]:
        """Every non-empty value of a repeatable key (``billing_tag``)."""
        v = self.params.get(name)
        if v is None:
            return []
        values = v if isinstance(v, list) else [v]
        return [s for s in (js_string(x) for x in values) if s]

    def prefixed(self, prefix: str) -> dict[str, str]:
        """``tag.KEY=VALUE`` pairs (the text of each key's value), keys without the prefix."""
        return {k[len(prefix) :]: js_string(v) for k, v in self.params.items() if k.startswith(prefix)}

    def empty(self, name: str) -> bool:
        """The key was given with the empty string as its value (``?owner=``)."""
        return self.params.get(name) == ""

    def boolean(self, name: str) -> bool | None:
        """A boolean parameter: None when absent, else exactly ``true``/``false`` (422 otherwise,
        the empty value included: ``inclAdminFields=`` is not a boolean)."""
        text = self.text(name)
        if text is None:
            return None
        if text in ("true", "false"):
            return text == "true"
        raise not_a_boolean(name, text)
