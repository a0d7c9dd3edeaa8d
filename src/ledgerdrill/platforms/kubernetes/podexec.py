"""Run one command in a container, as ``kubectl exec`` does, and read its exit code.

The client's WebSocket transport (``kubernetes.stream``) carries the command's stdout and
stderr on channels 1 and 2 and the kubelet's final ``Status`` on channel 3: ``Success``,
``NonZeroExitCode`` with the code as its one ``ExitCode`` cause, or an error that says the
command never ran (``staging/src/k8s.io/kubelet/pkg/cri/streaming/remotecommand/exec.go``).
The status is read here rather than through the client's ``returncode``, which assumes a
cause on every failure and raises ``KeyError`` on an ``InternalError``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream
from kubernetes.stream.ws_client import ERROR_CHANNEL

from kubernetes import client
from ledgerdrill.errors import PlatformError
from ledgerdrill.platforms.kubernetes.api import Kube


@dataclass(frozen=True)
class ExecResult:
    stdout: str
    stderr: str
    exit_code: int


def exec_in_pod(
    kube: Kube, namespace: str, pod: str, container: str, command: list[str], *,
    timeout_s: float,
) -> ExecResult:  # fmt: skip
    """The command's output and exit code; ``PlatformError`` when it could not run, did
    not end within ``timeout_s``, or the API server refused the stream."""
    what = f"exec {command[0] if command else '?'} in {namespace}/{pod} ({container})"
    # ``stream`` swaps its ApiClient's transport for the call's duration: a client of its
    # own keeps that from reaching requests other threads make through ``kube``
    api = client.ApiClient(kube.api.configuration)
    try:
        core = client.CoreV1Api(api)
        try:
            ws = stream(
                core.connect_get_namespaced_pod_exec, pod, namespace, command=command,
                container=container, stdin=False, stdout=True, stderr=True, tty=False,
                _preload_content=False,
            )  # fmt: skip
        except ApiException as exc:
            raise PlatformError(f"{what}: {_refusal(exc)}") from exc
        except OSError as exc:
            raise PlatformError(f"{what}: cannot reach the API server: {exc}") from exc
        try:
            ws.run_forever(timeout=timeout_s)
            if ws.is_open():
                raise PlatformError(f"{what}: no end after {timeout_s:g}s")
            out, err = ws.read_stdout(timeout=0) or "", ws.read_stderr(timeout=0) or ""
            status = ws.read_channel(ERROR_CHANNEL)
        finally:
            ws.close()
    finally:
        api.close()  # type: ignore[no-untyped-call]
    return ExecResult(str(out), str(err), _exit_code(what, status, str(err)))


def _exit_code(what: str, raw: str, stderr: str) -> int:
    try:
        status: dict[str, Any] = json.loads(raw) if raw else {}
    except ValueError:
        raise PlatformError(f"{what}: the stream ended with {raw!r:.200}") from None
    if status.get("status") == "Success":
        return 0
    if status.get("reason") == "NonZeroExitCode":
        causes = (status.get("details") or {}).get("causes") or []
        for cause in causes:
            if cause.get("reason") == "ExitCode" and str(cause.get("message", "")).isdigit():
                return int(cause["message"])
    message = status.get("message") or "no status from the kubelet"
    tail = f"; stderr: {stderr.strip()[:200]}" if stderr.strip() else ""
    raise PlatformError(f"{what}: {message}{tail}")


def _refusal(exc: ApiException) -> str:
    # websocket-client puts the refused handshake's status, headers and body in the
    # reason: "Handshake status 404 Not Found -+-+- {headers} -+-+- {body}"; the body is
    # the API server's Status (as bytes' repr in some versions of websocket-client)
    text = str(exc.reason or exc)
    body = text.rsplit("-+-+-", 1)[-1].strip()
    if body.startswith(("b'", 'b"')):
        body = body[2:-1].encode().decode("unicode_escape")
    try:
        status = json.loads(body)
    except ValueError:
        return text[:300]
    if not isinstance(status, dict):
        return text[:300]
    return f"{status.get('reason', '')}: {status.get('message', '')}".strip(": ")
