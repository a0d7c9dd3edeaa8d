"""``pods/{name}/exec`` for the fake API server: the checks the API server makes before it
hands the stream to the kubelet, and the kubelet's WebSocket channel protocol.

What the real parts do, and where it is written:

- The API server (``pkg/registry/core/pod/strategy.go``, ``streamLocation``): an unknown
  pod is 404; with no ``container`` parameter a pod of one container means that one, a pod
  of several is 400 "a container name must be specified for pod P, choose one of: [..]";
  an unknown container is 400 "container C is not valid for pod P"; a pod without a node
  is 400 "pod P does not have a host assigned". These come back as the HTTP answer to the
  upgrade request, before any WebSocket exists.
- The kubelet (``staging/src/k8s.io/kubelet/pkg/cri/streaming/remotecommand/websocket.go``
  and ``exec.go``): channels 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize, one byte in
  front of each binary message; an empty message on the lowest requested output channel
  once the stream is open; at the end, on channel 3 (protocol ``v4.channel.k8s.io``), a
  ``Status``: ``Success``, or ``Failure`` with reason ``NonZeroExitCode`` and one cause of
  type ``ExitCode`` whose message is the exit code, or an ``InternalError`` when the
  command could not run at all.

Not faithful: stdin and resize are ignored (nothing here sends them); the fake offers
``v4.channel.k8s.io`` only, where an API server of 1.30 or later negotiates ``v5`` when
the client offers it (v5 adds a close signal for stdin, which a command without stdin
never sends). A container has no programs of its own: a test says what a command does
(``FakeKubernetes.exec_handler``); without one every command fails as a missing
executable does under runc (exit code 126).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from io import BufferedIOBase
from typing import Any

from ledgerdrill.testing.fakeapi.store import ApiError, Obj

# RFC 6455 section 1.3: the key the server appends to the client's before hashing
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
V4_PROTOCOL = "v4.channel.k8s.io"
STDOUT, STDERR, ERROR = 1, 2, 3
OPCODE_BINARY, OPCODE_CLOSE = 0x2, 0x8


@dataclass(frozen=True)
class ExecCall:
    namespace: str
    pod: str
    container: str
    command: tuple[str, ...]


@dataclass(frozen=True)
class ExecOutcome:
    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int = 0
    # the command could not start (a missing executable): the kubelet's InternalError
    start_error: str | None = None


ExecHandler = Callable[[ExecCall], ExecOutcome]


def no_programs(call: ExecCall) -> ExecOutcome:
    """A container of the fake runs nothing: what runc says of a missing binary, and the
    exit code 126 the kubelet passes on (as Percona's operator docs show, debug-shell.md:
    "OCI runtime exec failed ... command terminated with exit code 126")."""
    program = call.command[0] if call.command else ""
    said = (
        "OCI runtime exec failed: exec failed: unable to start container process: "
        f'exec: "{program}": executable file not found in $PATH: unknown\n'
    )
    return ExecOutcome(stderr=said.encode(), exit_code=126)


def resolve_container(pod: Obj, name: str, wanted: str | None) -> str:
    """The container an exec runs in, or the API server's 400 (see the module doc)."""
    spec = pod.get("spec") or {}
    containers = [str(c.get("name")) for c in spec.get("containers") or []]
    if not wanted:
        if len(containers) != 1:
            raise ApiError(
                400, "BadRequest",
                f"a container name must be specified for pod {name}, choose one of: "
                f"[{' '.join(containers)}]",
            )  # fmt: skip
        wanted = containers[0]
    elif wanted not in containers:
        raise ApiError(400, "BadRequest", f"container {wanted} is not valid for pod {name}")
    if not spec.get("nodeName"):
        raise ApiError(400, "BadRequest", f"pod {name} does not have a host assigned")
    return wanted


def accept_key(client_key: str) -> str:
    digest = hashlib.sha1((client_key + WEBSOCKET_GUID).encode()).digest()  # RFC 6455 names SHA-1
    return base64.b64encode(digest).decode()


def frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final server frame (RFC 6455 section 5.2)."""
    head = bytes([0x80 | opcode])
    size = len(payload)
    if size < 126:
        return head + bytes([size]) + payload
    if size < 1 << 16:
        return head + bytes([126]) + struct.pack("!H", size) + payload
    return head + bytes([127]) + struct.pack("!Q", size) + payload


def final_status(outcome: ExecOutcome) -> dict[str, Any]:
    if outcome.start_error is not None:
        message = f"error executing command in container: {outcome.start_error}"
        return {"metadata": {}, "status": "Failure", "message": message,
                "reason": "InternalError", "code": 500,
                "details": {"causes": [{"message": message}]}}  # fmt: skip
    if outcome.exit_code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {}, "status": "Failure",
        "message": (
            "command terminated with non-zero exit code: "
            f"command terminated with exit code {outcome.exit_code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(outcome.exit_code)}]},
    }  # fmt: skip


def serve(wfile: BufferedIOBase, headers: Any, outcome_of: Callable[[], ExecOutcome]) -> None:
    """Answer the upgrade, stream the command's output and its final status, close."""
    offered = [p.strip() for p in (headers.get("Sec-WebSocket-Protocol") or "").split(",")]
    if V4_PROTOCOL not in offered:
        raise ApiError(400, "BadRequest", f"no supported stream protocol in {offered}")
    key = headers.get("Sec-WebSocket-Key") or ""
    wfile.write(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_key(key)}\r\n"
            f"Sec-WebSocket-Protocol: {V4_PROTOCOL}\r\n\r\n"
        ).encode()
    )
    wfile.write(frame(OPCODE_BINARY, bytes([STDOUT])))  # the stream is open
    outcome = outcome_of()
    for channel, data in ((STDOUT, outcome.stdout), (STDERR, outcome.stderr)):
        if data:
            wfile.write(frame(OPCODE_BINARY, bytes([channel]) + data))
    status = json.dumps(final_status(outcome)).encode()
    wfile.write(frame(OPCODE_BINARY, bytes([ERROR]) + status))
    wfile.write(frame(OPCODE_CLOSE, struct.pack("!H", 1000)))
    wfile.flush()
