"""The probes' lean HTTP client against httpx's own, as its witness: for each way a server
can behave -- answer, set and clear a cookie, close an idle kept-alive connection, hang,
drop the connection mid-answer, refuse to connect -- both clients must end the same way
(the same answer, or the same httpx exception type), because the canary and the probes
classify outcomes by those types."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from ledgerdrill.probes.lean_http import LeanClient

Behaviour = Callable[[socket.socket, bytes], None]
# generous: an answer from a local thread must never time out on a busy CI machine; a
# hanging server outlasts it threefold
TIMEOUT_S = 1.0


def _answer(conn: socket.socket, body: bytes, extra: str = "", close: bool = False) -> None:
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"{extra}{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n"
    )
    conn.sendall(head.encode() + body)


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n")
         if line.lower().startswith(b"content-length")),
        0,
    )  # fmt: skip
    while len(rest) < length:
        rest += conn.recv(65536)
    return head + b"\r\n\r\n" + rest


class Server:
    """One behaviour per request, in order; a plain-HTTP server on 127.0.0.1."""

    def __init__(self, behaviours: list[Behaviour]) -> None:
        self.behaviours = list(behaviours)
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.behaviours:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        with conn:
            while self.behaviours:
                request = _read_request(conn)
                if not request:
                    return
                self.requests.append(request)
                behaviour = self.behaviours.pop(0)
                behaviour(conn, request)
                if conn.fileno() == -1:
                    return

    def close(self) -> None:
        self.sock.close()


def ok(conn: socket.socket, request: bytes) -> None:
    _answer(conn, json.dumps({"result": 1}).encode())


def sets_cookie(conn: socket.socket, request: bytes) -> None:
    _answer(conn, b"{}", "Set-Cookie: session_id=abc; Path=/; HttpOnly\r\n")


def clears_cookie(conn: socket.socket, request: bytes) -> None:
    _answer(conn, b"{}", "Set-Cookie: session_id=; Max-Age=0; Path=/\r\n")


def echoes_cookie(conn: socket.socket, request: bytes) -> None:
    cookie = next(
        (line.split(b":", 1)[1].strip().decode() for line in request.split(b"\r\n")
         if line.lower().startswith(b"cookie:")),
        "",
    )  # fmt: skip
    _answer(conn, json.dumps({"cookie": cookie}).encode())


class AnswersThenCloses:
    """Keep-alive announced, then the server closes the idle connection anyway; ``done``
    says it has (the test waits for it: no race with a busy machine)."""

    __name__ = "answers_then_closes"

    def __init__(self) -> None:
        self.done = threading.Event()

    def __call__(self, conn: socket.socket, request: bytes) -> None:
        _answer(conn, b"{}")
        conn.shutdown(socket.SHUT_RDWR)
        conn.close()
        self.done.set()


def hangs(conn: socket.socket, request: bytes) -> None:
    time.sleep(TIMEOUT_S * 3)


def drops_mid_answer(conn: socket.socket, request: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"res")
    conn.shutdown(socket.SHUT_RDWR)
    conn.close()


def drops_before_answer(conn: socket.socket, request: bytes) -> None:
    conn.shutdown(socket.SHUT_RDWR)
    conn.close()


def gateway_error(conn: socket.socket, request: bytes) -> None:
    conn.sendall(b"HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 15\r\n\r\nGateway Timeout")


@pytest.fixture
def serve() -> Iterator[Callable[[list[Behaviour]], Server]]:
    servers: list[Server] = []

    def start(behaviours: list[Behaviour]) -> Server:
        servers.append(Server(behaviours))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def outcome(call: Callable[[], Any]) -> Any:
    try:
        answer = call()
    except httpx.HTTPError as exc:
        return type(exc)
    return answer.status_code, answer.json()


def both(
    serve: Callable[[list[Behaviour]], Server],
    behaviours: list[Behaviour],
    steps: Callable[[Any], list[Any]],
) -> tuple[list[Any], list[Any], Server]:
    theirs = serve(list(behaviours))
    with httpx.Client(base_url=theirs.url, timeout=TIMEOUT_S) as client:
        expected = steps(client)
    mine = serve(list(behaviours))
    with LeanClient(mine.url, timeout_s=TIMEOUT_S) as lean:
        got = steps(lean)
    return expected, got, mine


@pytest.mark.parametrize(
    "behaviour", [ok, hangs, drops_mid_answer, drops_before_answer],
    ids=lambda b: b.__name__,
)  # fmt: skip
def test_one_request_ends_as_httpx_ends_it(
    serve: Callable[[list[Behaviour]], Server], behaviour: Behaviour
) -> None:
    expected, got, _ = both(
        serve, [behaviour], lambda c: [outcome(lambda: c.post("/rpc", json={"a": 1}))]
    )
    assert got == expected


def test_a_refused_connection_is_a_connect_error_as_with_httpx() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url) as client, LeanClient(url) as lean:
        assert outcome(lambda: lean.get("/")) == outcome(lambda: client.get("/"))
        assert outcome(lambda: lean.get("/")) is httpx.ConnectError


def test_cookies_are_kept_sent_back_and_cleared(
    serve: Callable[[list[Behaviour]], Server],
) -> None:
    def steps(client: Any) -> list[Any]:
        return [outcome(lambda: client.get("/")) for _ in range(4)]

    expected, got, _ = both(serve, [sets_cookie, echoes_cookie, clears_cookie, echoes_cookie], steps)
    assert got == expected
    assert got[1] == (200, {"cookie": "session_id=abc"}) and got[3] == (200, {"cookie": ""})


def test_a_connection_closed_while_idle_is_replaced_not_reused(
    serve: Callable[[list[Behaviour]], Server],
) -> None:
    closer = AnswersThenCloses()

    def steps(client: Any) -> list[Any]:
        closer.done.clear()
        first = outcome(lambda: client.get("/"))
        assert closer.done.wait(10)  # the server has closed the kept-alive connection
        time.sleep(0.05)  # and its FIN has reached our socket
        return [first, outcome(lambda: client.post("/rpc", json={"write": 1}))]

    expected, got, server = both(serve, [closer, ok], steps)
    assert got == expected == [(200, {}), (200, {"result": 1})]
    # the write went out once, on a fresh connection: never twice, never lost to a dead one
    assert server.connections == 2 and len(server.requests) == 2


def test_a_gateway_error_is_an_answer_and_raise_for_status_raises_httpx_s_error(
    serve: Callable[[list[Behaviour]], Server],
) -> None:
    server = serve([gateway_error])
    with LeanClient(server.url, timeout_s=1.0) as lean:
        answer = lean.get("/")
        assert answer.status_code == 504 and answer.text == "Gateway Timeout"
        with pytest.raises(httpx.HTTPStatusError) as raised:
            answer.raise_for_status()
        assert raised.value.response.status_code == 504


def test_the_request_is_what_httpx_would_send(serve: Callable[[list[Behaviour]], Server]) -> None:
    server = serve([ok])
    with LeanClient(server.url + "/", headers={"User-Agent": "ledgerdrill-probe"}) as lean:
        lean.post("/web/dataset/call_kw", json={"params": {"x": [1, 2]}})
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /web/dataset/call_kw HTTP/1.1"
    fields = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    assert fields["host"] == f"127.0.0.1:{server.port}"
    assert fields["content-type"] == "application/json"
    assert fields["user-agent"] == "ledgerdrill-probe"
    assert int(fields["content-length"]) == len(body)
    assert json.loads(body) == {"params": {"x": [1, 2]}}


def test_a_mistyped_url_fails_each_request_as_httpx_does_not_with_a_traceback() -> None:
    lean = LeanClient("htps://127.0.0.1:9")  # a catalogue typo
    assert outcome(lambda: lean.get("/web/health")) is httpx.UnsupportedProtocol
    with httpx.Client(base_url="htps://127.0.0.1:9") as client:
        assert outcome(lambda: client.get("/web/health")) is httpx.UnsupportedProtocol
