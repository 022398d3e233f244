"""Health of a Triton server as a client sees it: ready, and every model able to answer an inference.

``/v2/health/ready`` alone is not enough for tritonserver 2.51: after a Python-backend stub dies it stays 200 while
requests to that model fail (until the launcher's supervisor reloads the model). So the check also sends each model
a small canary inference built from its metadata (zeros, every variable dimension 1) and counts a 5xx answer, a
timeout, a refused connection or a 404 (no version of the model available) as unhealthy (another 4xx means the
model answered). The launcher's supervisor uses the same canary; compose's healthcheck and Kubernetes probes call
the command line:

    python -m swish_triton.serving.health --url 127.0.0.1:8000                 # exit 0 healthy, 1 not
    python -m swish_triton.serving.health --url 127.0.0.1:8000 -m swish_py -m swish_py_fp16
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from swish_triton import settings
from swish_triton.cli_help import HelpFormatter
from swish_triton.serving.control_api import DEFAULT_KEY_HEADER, http_call, ready_models

_ZERO = {"BOOL": False, "BYTES": ""}
# Triton's datatypes a JSON canary can carry (FP16 and BF16 cannot travel as JSON: Triton answers 400, which counts
# as the model answering).
CANARY_DATATYPES = set("BOOL BYTES UINT8 UINT16 UINT32 UINT64 INT8 INT16 INT32 INT64 FP16 BF16 FP32 FP64".split())


def server_ready(url: str, timeout_s: float = 2.0) -> bool:
    return http_call(url, "/v2/health/ready", timeout_s=timeout_s)[0] == 200


def canary_request(metadata: dict) -> bytes:
    inputs = []
    for tensor in metadata.get("inputs", []):
        shape = [1 if d < 0 else d for d in tensor["shape"]]
        count = 1
        for d in shape:
            count *= d
        zero = _ZERO.get(tensor["datatype"], 0)
        if tensor["datatype"] not in CANARY_DATATYPES:
            raise ValueError(f"no canary for datatype {tensor['datatype']}")
        inputs.append({"name": tensor["name"], "datatype": tensor["datatype"], "shape": shape, "data": [zero] * count})
    return json.dumps({"inputs": inputs}).encode()


def canary(url: str, model: str, timeout_s: float = 5.0) -> str | None:
    """None if the model answered a small inference (any 2xx or 4xx), else why not."""
    status, body = http_call(url, f"/v2/models/{model}", timeout_s=timeout_s)
    if status != 200:
        return f"metadata: HTTP {status or 'no answer'}"
    try:
        request = canary_request(json.loads(body))
    except (ValueError, KeyError, TypeError) as exc:
        return f"cannot build a canary request: {exc}"
    status, body = http_call(url, f"/v2/models/{model}/infer", request, {"Content-Type": "application/json"}, timeout_s)
    if status == 0:
        return "inference: no answer"
    if status >= 500 or status in (404, 409, 503):  # 404: no version of the model is available (unloaded)
        return f"inference: HTTP {status}: {body.decode(errors='replace')[:200]}"
    return None


def check(
    url: str, models: Sequence[str], key: str | None = None, header: str = DEFAULT_KEY_HEADER, timeout_s: float = 5.0
) -> list[str]:
    """Problems found (empty when healthy)."""
    status, body = http_call(url, "/v2/health/ready", timeout_s=timeout_s)
    if status != 200:
        reason = body.decode(errors="replace").strip() or "no answer"
        return [f"server not ready (HTTP {status or '-'}: {reason})"]
    names = list(models) or ready_models(url, key, header) or []
    problems = [f"{model}: {why}" for model in names if (why := canary(url, model, timeout_s))]
    # A canary can wait on a model that is going down; readiness after it says whether it was still up.
    status, _ = http_call(url, "/v2/health/ready", timeout_s=timeout_s)
    return problems if status == 200 else [*problems, f"server not ready (HTTP {status or '-'})"]


def main(argv: Sequence[str] | None = None) -> int:
    environ = settings.environment()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    parser.add_argument("-u", "--url", default="127.0.0.1:8000", help="HTTP host:port of the server")
    parser.add_argument(
        "-m",
        "--model",
        action="append",
        default=[],
        help="model to send a canary (repeatable; default: every READY model in the repository "
        "index, which needs the key where the repository API is restricted)",
    )
    parser.add_argument("--api-key", default=None, help="default: $SWISH_API_KEY")
    parser.add_argument("--api-key-header", default=settings.value("SWISH_API_KEY_HEADER", environ))
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per call")
    args = parser.parse_args(argv)
    key = settings.resolve("SWISH_API_KEY", args.api_key or None, environ)[0]
    problems = check(args.url, args.model, key, args.api_key_header, args.timeout)
    for problem in problems:
        print(f"unhealthy: {problem}")
    if not problems:
        print(f"healthy: {args.url}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
