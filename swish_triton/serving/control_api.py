"""The embedded server's locked control plane: which Triton APIs need a key, and the launcher's own calls to them.

By default the launcher restricts Triton's model-repository, shared-memory, logging and trace APIs on HTTP and gRPC
(``--http-restricted-api`` / ``--grpc-restricted-protocol``) with a key that only the launcher knows (a fresh random
key per launch) unless the user passes one (``--api-key`` / ``SWISH_API_KEY``). Over HTTP the key goes in the header
``<header>`` (default ``swish-api-key``); over gRPC in ``triton-grpc-protocol-<header>`` (Triton's prefix). Health,
metadata, model configuration, statistics and inference stay open.
"""

from __future__ import annotations

import json
import re
import secrets
import urllib.error
import urllib.request
from collections.abc import Sequence

from swish_triton import settings
from swish_triton.errors import SwishError

RESTRICTED_APIS = ("model-repository", "shared-memory", "logging", "trace")
OPEN_APIS = ("health", "metadata", "model-config", "statistics", "inference")
DEFAULT_KEY_HEADER = settings.DEFAULT_KEY_HEADER
GRPC_HEADER_PREFIX = "triton-grpc-protocol-"
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9._~-]{16,}$")


class ControlApiError(SwishError):
    """A key or a control call the server refused; the message says which and why."""


def new_key() -> str:
    return secrets.token_hex(32)


def check_key(key: str, header: str) -> None:
    """Triton splits the flag at ',' ':' and '=', and gRPC metadata keys are lower case: refuse what would break."""
    if not _KEY_PATTERN.match(key):
        raise ControlApiError("the API key must be at least 16 characters from A-Z a-z 0-9 . _ ~ -")
    if not re.match(r"^[a-z0-9-]+$", header):
        raise ControlApiError(f"the API key header must be lower-case letters, digits and '-', not {header!r}")


def restricted_args(key: str, header: str, open_apis: Sequence[str] = ()) -> list[str]:
    unknown = set(open_apis) - set(RESTRICTED_APIS)
    if unknown:
        raise ControlApiError(f"--open-api takes {', '.join(RESTRICTED_APIS)}, not {', '.join(sorted(unknown))}")
    apis = [api for api in RESTRICTED_APIS if api not in open_apis]
    if not apis:
        return []
    spec = f"{','.join(apis)}:{header}={key}"
    return [f"--http-restricted-api={spec}", f"--grpc-restricted-protocol={spec}"]


def http_call(
    url: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None, timeout_s: float = 5.0
) -> tuple[int, bytes]:
    """(status, body); status 0 when nothing answered."""
    request = urllib.request.Request(
        f"http://{url}{path}", data=body, headers=headers or {}, method="POST" if body is not None else "GET"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:  # noqa: S310 - http URL built here
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def repository_call(
    http_url: str, model: str, action: str, key: str, header: str, timeout_s: float = 120, config: str | None = None
) -> None:
    """``POST /v2/repository/models/<model>/<action>`` (load or unload) with the key; raises with Triton's reason.
    ``config`` (JSON) loads the model with that configuration."""
    body = json.dumps({"parameters": {"config": config}}).encode() if config is not None else b"{}"
    request = urllib.request.Request(
        f"http://{http_url}/v2/repository/models/{model}/{action}",
        data=body,
        method="POST",
        headers={header: key, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:  # noqa: S310 - http URL built here
            resp.read()
    except urllib.error.HTTPError as exc:
        raise ControlApiError(f"{action} {model}: HTTP {exc.code}: {exc.read().decode(errors='replace')}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ControlApiError(f"{action} {model}: {exc}") from None


def ready_models(http_url: str, key: str | None, header: str, timeout_s: float = 5) -> list[str] | None:
    """Names of the models the repository index reports READY; None when the index does not answer or is refused
    (restricted, and no key given)."""
    status, body = http_call(http_url, "/v2/repository/index", b"{}", {header: key} if key else {}, timeout_s)
    if status != 200:
        return None
    try:
        return [m["name"] for m in json.loads(body) if m.get("state") == "READY"]
    except (ValueError, KeyError, TypeError):
        return None
