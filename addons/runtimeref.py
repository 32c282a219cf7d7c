"""A holder for the shared `Runtime`, so addons can be built before it exists."""
from __future__ import annotations

from mitmproxy import http

from proxy.engine import Evaluation
from proxy.policy import Identity
from proxy.runtime import Runtime

IDENTITY = "schoolgate.identity"
EVALUATION = "schoolgate.evaluation"
ANSWERED = "schoolgate.answered"


class RuntimeRef:
    def __init__(self, runtime: Runtime | None = None) -> None:
        self.runtime = runtime

    @property
    def rt(self) -> Runtime:
        if self.runtime is None:
            raise RuntimeError("Schoolgate's runtime is not started")
        return self.runtime


def identity_of(flow: http.HTTPFlow) -> Identity | None:
    value = flow.metadata.get(IDENTITY)
    return value if isinstance(value, Identity) else None


def evaluation_of(flow: http.HTTPFlow) -> Evaluation | None:
    value = flow.metadata.get(EVALUATION)
    return value if isinstance(value, Evaluation) else None


def header(headers: http.Headers, name: bytes) -> str:
    """`headers.get(name, "")` for a lower-case `name`, in one pass over the raw fields.

    The same value (repeated headers folded with ", ", bytes decoded as mitmproxy
    does), without the case-insensitive Mapping detour that costs several
    microseconds a look-up on the request path.
    """
    values = [value for key, value in headers.fields if key.lower() == name]
    if not values:
        return ""
    if len(values) == 1:
        return values[0].decode("utf-8", "surrogateescape")
    return ", ".join(value.decode("utf-8", "surrogateescape") for value in values)
