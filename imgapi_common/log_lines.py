"""The log line format of every imgapi process, without the logging machinery behind it.

The supervisor of ``imgapi serve`` writes its own lines with these and nothing else: it lives as
long as the stack, and importing :mod:`imgapi_common.observability` (gRPC, Prometheus) would keep
about 25 MiB resident in it for nothing. Also home of the token variable's name, for the same reason
(:mod:`imgapi_common.internal_auth` needs gRPC).
"""

from __future__ import annotations

import json
import time
from typing import IO, Any

#: The one environment variable every imgapi process reads the internal token from.
TOKEN_SETTING = "IMGAPI_INTERNAL_TOKEN"


def utc_ts(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created * 1000) % 1000:03d}Z"


def json_line(service: str, level: str, msg: str, fields: dict[str, Any] | None = None, **more: Any) -> str:
    """One log line in the JSON format (also used by ``imgapi serve`` for its own lines)."""
    out: dict[str, Any] = {"ts": utc_ts(time.time()), "level": level, "service": service}
    out.update(more)
    out["msg"] = msg
    out.update(fields or {})
    return json.dumps(out, ensure_ascii=False)


def is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
