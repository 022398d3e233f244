"""``swish-hostile``: send a Triton server the requests known to crash tritonserver 2.51, and other abuse, and report
what each did to it. Destructive: it may crash the server under test, so it runs only with ``--destructive``.

Each case sends one request, then checks the server: ready, and the model answering a few small inferences
(``health.check``). The outcome is one of

- ``refused``: an error answer, and the server still serves;
- ``served``: a normal answer (for instance NaN and infinity in the data), and the server still serves;
- ``died``: the server or the model stopped serving while the request was answered or soon after (5 s for a crash
  shape, 2 s for the rest); the report says whether, and how long after it stopped, it served again.

The crash shapes are tritonserver 2.51's overflow defects (docs/security.md: which releases fix them). Run it
against the Triton you deploy::

    swish-hostile -u 127.0.0.1:8000 -u grpc=127.0.0.1:8001 -m swish_py --destructive
    swish-hostile --list

Exit status 0 when nothing died, 1 when a case made the server or the model stop serving (even if it came back),
2 bad arguments, 3 no server reachable.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from swish_triton import settings
from swish_triton.cli_help import usage_error
from swish_triton.clients import cli
from swish_triton.errors import SwishError
from swish_triton.serving.control_api import http_call
from swish_triton.serving.health import check

INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Target:
    http_url: str
    grpc_url: str
    model: str
    input_name: str = "INPUT0"
    datatype: str = "FP32"


@dataclass(frozen=True)
class Case:
    name: str
    protocol: str  # "http" or "grpc"
    crash: bool  # one of tritonserver 2.51's known crash shapes
    send: Callable[[Target], str]  # returns the answer in one line


@dataclass
class Outcome:
    case: Case
    answer: str
    result: str  # refused, served, died
    back_after_s: float | None = None  # died: seconds until it served again (None: not within the timeout)

    def line(self) -> str:
        what = self.result
        if self.result == "died":
            what += f", back after {self.back_after_s:.1f} s" if self.back_after_s is not None else ", not back"
        return f"{self.case.name:<44} {self.case.protocol:<5} {what:<24} {self.answer}"


# --- how requests are sent ----------------------------------------------------------------------------------------


def http_request(
    url: str, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None, raw: bytes = b""
) -> str:
    """One request on a fresh connection; ``raw`` sends those bytes as they are instead. The answer in one line."""
    host, port = url.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        if raw:
            conn.connect()
            assert conn.sock is not None
            conn.sock.sendall(raw)
            response = http.client.HTTPResponse(conn.sock, method=method)
            response.begin()
        else:
            conn.request(method, target, body, headers or {})
            response = conn.getresponse()
        text = response.read(400).decode(errors="replace")
        return f"HTTP {response.status}: {' '.join(text.split())[:160]}"
    except (OSError, http.client.HTTPException) as exc:
        return f"no answer ({type(exc).__name__}: {exc})"[:200]
    finally:
        conn.close()


def infer_json(t: Target, shape: list[int], data: list[float]) -> bytes:
    return json.dumps(
        {"inputs": [{"name": t.input_name, "datatype": t.datatype, "shape": shape, "data": data}]}
    ).encode()


def http_json(shape: list[int], data: list[float] | None = None) -> Callable[[Target], str]:
    def send(t: Target) -> str:
        body = infer_json(t, shape, [1.0] if data is None else data)
        return http_request(t.http_url, "POST", f"/v2/models/{t.model}/infer", body)

    return send


def http_binary(shape: list[int], data: bytes = b"") -> Callable[[Target], str]:
    def send(t: Target) -> str:
        tensor = {"name": t.input_name, "datatype": t.datatype, "shape": shape}
        header = json.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": len(data)}}]}).encode()
        headers = {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"}
        return http_request(t.http_url, "POST", f"/v2/models/{t.model}/infer", header + data, headers)

    return send


def http_body(body: bytes, content_type: str = "application/json") -> Callable[[Target], str]:
    def send(t: Target) -> str:
        return http_request(t.http_url, "POST", f"/v2/models/{t.model}/infer", body, {"Content-Type": content_type})

    return send


def http_raw(make: Callable[[Target], bytes]) -> Callable[[Target], str]:
    def send(t: Target) -> str:
        return http_request(t.http_url, "POST", "", raw=make(t))

    return send


def grpc_infer(shape: list[int], raw: bytes = b"", stream: bool = False) -> Callable[[Target], str]:
    # A dimension above int64 does not fit the message; on the wire it is the same bits as a negative int64.
    wire_shape = [d - 2**64 if d > INT64_MAX else d for d in shape]

    def send(t: Target) -> str:
        import grpc
        from tritonclient.grpc import service_pb2, service_pb2_grpc

        tensor = service_pb2.ModelInferRequest.InferInputTensor(
            name=t.input_name, datatype=t.datatype, shape=wire_shape
        )
        request = service_pb2.ModelInferRequest(model_name=t.model, inputs=[tensor], raw_input_contents=[raw])
        with grpc.insecure_channel(t.grpc_url) as channel:
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            try:
                if stream:
                    replies = list(stub.ModelStreamInfer(iter([request]), timeout=60))
                    errors = [r.error_message for r in replies if r.error_message]
                    return f"stream: {errors[0][:160]}" if errors else f"stream: {len(replies)} answer(s)"
                stub.ModelInfer(request, timeout=60)
                return "OK"
            except grpc.RpcError as exc:
                return f"{exc.code().name}: {' '.join((exc.details() or '').split())[:160]}"

    return send


def absolute_form(shape: list[int]) -> Callable[[Target], bytes]:
    def make(t: Target) -> bytes:
        body = infer_json(t, shape, [1.0])
        return (
            f"POST http://{t.http_url}/v2/models/{t.model}/infer HTTP/1.1\r\nHost: {t.http_url}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body

    return make


# --- the cases ----------------------------------------------------------------------------------------------------

CRASH_CASES = (
    Case("JSON shape [1, 2^62]", "http", True, http_json([1, 2**62])),
    Case("JSON shape [64, 2^63-1]", "http", True, http_json([64, INT64_MAX])),
    Case("JSON shape [1, 2^62-1]", "http", True, http_json([1, 2**62 - 1])),
    Case("JSON shape [1, 2^34]", "http", True, http_json([1, 2**34])),
    Case("JSON shape [1, 2^62], absolute-form target", "http", True, http_raw(absolute_form([1, 2**62]))),
    Case("binary shape [2, 2^63], no data", "http", True, http_binary([2, 2**63])),
    Case("binary shape [4, 2^61], no data", "http", True, http_binary([4, 2**61])),
    Case("shape [4, 2^61], no data", "grpc", True, grpc_infer([4, 2**61])),
    Case("shape [2, 2^63], no data", "grpc", True, grpc_infer([2, 2**63])),
    Case("shape [4, 2^61], no data, streaming", "grpc", True, grpc_infer([4, 2**61], stream=True)),
)

ABUSE_CASES = (
    Case("malformed JSON", "http", False, http_body(b'{"inputs": [')),
    Case("JSON nested 100,000 deep", "http", False, http_body(b"[" * 100_000 + b"]" * 100_000)),
    Case("not HTTP at all", "http", False, http_raw(lambda t: b"GARBAGE\r\n\r\n")),
    Case("binary size larger than the body", "http", False, http_binary([1, 4], b"\0" * 8)),
    Case("negative dimension", "http", False, http_json([1, -4], [1.0, 2.0, 3.0, 4.0])),
    Case("empty tensor", "http", False, http_json([1, 0], [])),
    Case("wrong rank", "http", False, http_json([4], [1.0, 2.0, 3.0, 4.0])),
    Case("batch above the maximum", "http", False, http_json([4096, 1], [1.0] * 4096)),
    Case("unknown model", "http", False, lambda t: http_json([1, 1])(Target(t.http_url, t.grpc_url, "no_such_model"))),
    Case("NaN and infinity", "http", False, http_binary([1, 4], b"\0\0\xc0\x7f" + b"\0\0\x80\x7f" * 2 + b"\0" * 4)),
    Case("64 MiB + 4 bytes in one request", "http", False, http_binary([1, 16 * 2**20 + 1], b"\0" * (64 * 2**20 + 4))),
    Case(
        "wrong datatype",
        "grpc",
        False,
        lambda t: grpc_infer([1, 2], b"\0" * 16)(Target(t.http_url, t.grpc_url, t.model, datatype="FP64")),
    ),
    Case("raw data shorter than the shape", "grpc", False, grpc_infer([1, 8], b"\0" * 4)),
)
CASES = CRASH_CASES + ABUSE_CASES


# --- running them -------------------------------------------------------------------------------------------------


def ready(t: Target) -> bool:
    """Server and model ready, as Triton reports them."""
    paths = ("/v2/health/ready", f"/v2/models/{t.model}/ready")
    return all(http_call(t.http_url, path, timeout_s=5)[0] == 200 for path in paths)


def serving(t: Target) -> bool:
    """Ready, and the model answers four canaries in a row (a dead stub behind a balancer fails some of them)."""
    return all(not check(t.http_url, [t.model], timeout_s=10) for _ in range(4))


def run_case(case: Case, t: Target, recovery_timeout_s: float = 60.0, watch_s: float | None = None) -> Outcome:
    """Send the case while another thread polls readiness; go on polling for ``watch_s`` after the answer (default
    5 s for a crash shape, 2 s otherwise: a crash, or a stub that dies, can take a moment, and the request itself can
    hang through a short outage); then check that the model answers. If the server stopped serving at any point,
    wait up to ``recovery_timeout_s`` for it to serve again."""
    down_since: list[float] = []
    done = threading.Event()

    def watch() -> None:
        # Readiness alone, polled fast: a canary can itself wait through a short outage and miss it.
        while not done.is_set() and not down_since:
            if not ready(t):
                down_since.append(time.monotonic())
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    answer = case.send(t)
    # A stub hit by a crash shape can hang for seconds before it dies (seen right after a restart).
    deadline = time.monotonic() + (watch_s if watch_s is not None else 5.0 if case.crash else 2.0)
    while time.monotonic() < deadline and not down_since:
        time.sleep(0.02)
    done.set()
    watcher.join()
    if not down_since and not serving(t):
        down_since.append(time.monotonic())
    if not down_since:
        ok = answer == "OK" or answer.startswith(("HTTP 200", "stream: 1 answer"))
        return Outcome(case, answer, "served" if ok else "refused")
    while time.monotonic() - down_since[0] < recovery_timeout_s:
        if serving(t):
            return Outcome(case, answer, "died", time.monotonic() - down_since[0])
        time.sleep(0.1)
    return Outcome(case, answer, "died")


def run(
    cases: Sequence[Case], t: Target, recovery_timeout_s: float, out: Callable[[str], None] = print
) -> list[Outcome]:
    outcomes = []
    for case in cases:
        if not serving(t):
            out(f"{case.name:<44} {case.protocol:<5} skipped: the server is not serving before the case")
            continue
        outcome = run_case(case, t, recovery_timeout_s)
        out(outcome.line())
        outcomes.append(outcome)
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    environ = settings.environment()
    parser = cli.make_parser(__doc__.splitlines()[0])
    parser.add_argument("-u", "--url", action="append", help=cli.url_help("http and grpc", environ))
    parser.add_argument("-m", "--model", default="swish_py", help="the model the requests go to")
    parser.add_argument("--case", action="append", help="run only cases whose name contains this (repeatable)")
    parser.add_argument("--crash-only", action="store_true", help="only tritonserver 2.51's known crash shapes")
    parser.add_argument("--recovery-timeout", type=float, default=60.0, help="seconds to wait for a server to return")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument(
        "--destructive", action="store_true", help="required: the cases may crash the server under test"
    )
    args = parser.parse_args(argv)
    cases = [
        c
        for c in (CRASH_CASES if args.crash_only else CASES)
        if not args.case or any(part.lower() in c.name.lower() for part in args.case)
    ]
    if args.list:
        for c in cases:
            print(f"{c.name:<44} {c.protocol:<5} {'crash shape' if c.crash else 'abuse'}")
        return cli.EXIT_OK
    if not args.destructive:
        print("error: these requests may crash the server under test; run again with --destructive", file=sys.stderr)
        return cli.EXIT_USAGE
    try:
        urls = cli.parse_urls(args.url, ["http", "grpc"], environ)
    except SwishError as exc:
        return usage_error(exc)
    target = Target(urls["http"][0], urls["grpc"][0], args.model)
    if not serving(target):
        problems = "; ".join(check(target.http_url, [target.model])) or "not serving"
        print(f"error: {target.http_url} ({args.model}): {problems}", file=sys.stderr)
        return cli.EXIT_UNREACHABLE
    print(f"{len(cases)} cases against HTTP {target.http_url}, gRPC {target.grpc_url}, model {target.model}")
    outcomes = run(cases, target, args.recovery_timeout)
    died = [o for o in outcomes if o.result == "died"]
    print(f"{len(outcomes)} cases: {len(outcomes) - len(died)} survived, {len(died)} made the server stop serving")
    return cli.EXIT_FAILED if died else cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
