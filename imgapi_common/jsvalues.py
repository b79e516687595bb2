"""JavaScript value semantics that IMGAPI's behaviour depends on.

The reference server is written in JavaScript and tests presence with truthiness, converts with
``Number()``/``String()`` and counts string lengths in UTF-16 code units. These helpers reproduce
that on JSON-like Python values (``None`` stands for JSON ``null``).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

#: JavaScript StrWhiteSpaceChar: WhiteSpace (incl. every Unicode "Zs") and LineTerminator.
_JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)

_DECIMAL_RE = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_RADIX_RE = re.compile(r"0(?:[xX](?P<x>[0-9a-fA-F]+)|[oO](?P<o>[0-7]+)|[bB](?P<b>[01]+))")

#: Integers at or above this magnitude are not exactly representable in a JS number.
_MAX_SAFE = 2**53


def truthy(v: Any) -> bool:
    """JS truthiness: ``False``, ``0``, ``""``, ``None`` and NaN are falsy; ``[]`` and ``{}`` are not."""
    if v is None or v is False:
        return False
    if isinstance(v, bool):
        return True
    if isinstance(v, int):
        return v != 0
    if isinstance(v, float):
        return not (v == 0.0 or math.isnan(v))
    if isinstance(v, str):
        return v != ""
    return True


def _int_to_float(v: int) -> float:
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def _string_to_number(s: str) -> float:
    s = s.strip(_JS_WHITESPACE)
    if s == "":
        return 0.0
    m = _RADIX_RE.fullmatch(s)
    if m is not None:
        if m.group("x") is not None:
            return _int_to_float(int(m.group("x"), 16))
        if m.group("o") is not None:
            return _int_to_float(int(m.group("o"), 8))
        return _int_to_float(int(m.group("b"), 2))
    if _DECIMAL_RE.fullmatch(s) is None:
        return math.nan
    if s.endswith("Infinity"):
        return -math.inf if s.startswith("-") else math.inf
    return float(s)


def js_number(v: Any) -> float:
    """JS ``Number(v)``: ``"2"`` -> 2.0, ``""`` -> 0.0, ``"abc"`` -> NaN, ``None`` -> 0.0, ``[]`` -> 0.0."""
    if v is None:
        return 0.0
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, int):
        return _int_to_float(v)
    if isinstance(v, float):
        return v
    if isinstance(v, str):
        return _string_to_number(v)
    if isinstance(v, (list, tuple)):
        # Arrays convert through their string form: [] -> "" -> 0, [5] -> "5" -> 5, [1, 2] -> NaN.
        return _string_to_number(js_string(v))
    return math.nan


def _float_to_string(x: float) -> str:
    """ECMAScript Number::toString(x) (radix 10)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"  # also -0
    sign = "-" if x < 0 else ""
    # repr() gives the shortest digit string that round-trips, as ECMAScript requires.
    _, digit_tuple, exp = Decimal(repr(abs(x))).as_tuple()
    assert isinstance(exp, int)
    digits = "".join(str(d) for d in digit_tuple).rstrip("0")
    exp += len(digit_tuple) - len(digits)
    k = len(digits)
    n = k + exp  # value = 0.<digits> * 10**n
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
        out = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + out


def js_string(v: Any) -> str:
    """JS ``String(v)``: ``1.0`` -> ``"1"``, ``1.5`` -> ``"1.5"``, ``True`` -> ``"true"``."""
    if isinstance(v, str):
        return v
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if abs(v) < _MAX_SAFE else _float_to_string(_int_to_float(v))
    if isinstance(v, float):
        return _float_to_string(v)
    if isinstance(v, (list, tuple)):
        return ",".join("" if e is None else js_string(e) for e in v)
    return "[object Object]"


def js_len(s: str) -> int:
    """Length of ``s`` as JavaScript counts it (UTF-16 code units)."""
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def boolish(v: Any) -> bool | None:
    """``True``/``False`` for ``true``/``false``/``"true"``/``"false"``, else ``None``."""
    if v is True or v == "true":
        return True
    if v is False or v == "false":
        return False
    return None


def is_true(v: Any) -> bool:
    """A bool-ish flag (``disabled``, ``public``, ``activated``...) that reads as true."""
    return boolish(v) is True


def is_uuid(v: Any) -> bool:
    """A lower-case UUID string (IMGAPI accepts no upper-case UUIDs)."""
    return isinstance(v, str) and _UUID_RE.fullmatch(v) is not None


def is_js_integer(x: float) -> bool:
    """``Number.isInteger``-like test on a float (finite and integral)."""
    return math.isfinite(x) and x.is_integer()


def to_json_number(x: float) -> int | float:
    """A ``Number()`` result in the form to store: integral finite floats become ``int``."""
    if is_js_integer(x):
        return int(x)
    return x


def is_array_index(key: str) -> bool:
    """A canonical array index (``"0"``..``"4294967294"``, no leading zero): JavaScript objects
    list such keys first, in ascending order, whatever order they were created in."""
    return key.isdigit() and key.isascii() and (key == "0" or key[0] != "0") and int(key) < 2**32 - 1


def js_key_order(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object as ``JSON.parse`` builds it from its members: a repeated key keeps its first
    position and its last value, and array-index keys come first in ascending order."""
    obj: dict[str, Any] = dict(pairs)
    if not any(is_array_index(k) for k in obj):
        return obj
    index = sorted((k for k in obj if is_array_index(k)), key=int)
    return {**{k: obj[k] for k in index}, **{k: v for k, v in obj.items() if not is_array_index(k)}}


def js_parse_int(text: str) -> int | float:
    """A JSON integer as ``JSON.parse`` reads it: beyond 2**53 it is the nearest double."""
    n = int(text)
    if abs(n) < _MAX_SAFE:
        return n
    return _int_to_float(n) if len(text) < 400 else float(text)


def copy_json(value: Any) -> Any:
    """A deep copy of a parsed JSON value (dicts, lists and immutable scalars): what
    ``copy.deepcopy`` gives for such a value, several times faster (no memo, no dispatch)."""
    kind = type(value)
    if kind is dict:
        return {k: copy_json(v) for k, v in value.items()}
    if kind is list:
        return [copy_json(v) for v in value]
    return value
