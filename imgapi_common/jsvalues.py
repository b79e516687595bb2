"""JavaScript's ``String(v)`` and string length on JSON-like Python values (``None`` stands for JSON
``null``): the catalog (:mod:`catalog_service.domain.jsvalues` holds the rest of the JS semantics
IMGAPI depends on) and replication's job filters compare tag values through them.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

#: Integers at or above this magnitude are not exactly representable in a JS number.
MAX_SAFE = 2**53


def int_to_float(v: int) -> float:
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


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
        return str(v) if abs(v) < MAX_SAFE else _float_to_string(int_to_float(v))
    if isinstance(v, float):
        return _float_to_string(v)
    if isinstance(v, (list, tuple)):
        return ",".join("" if e is None else js_string(e) for e in v)
    return "[object Object]"


def js_len(s: str) -> int:
    """Length of ``s`` as JavaScript counts it (UTF-16 code units)."""
    return len(s.encode("utf-16-le", "surrogatepass")) // 2
