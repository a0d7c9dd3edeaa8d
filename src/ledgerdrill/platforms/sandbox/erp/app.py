"""The HTTP side: Starlette routes with Odoo's paths, envelopes and cookies.

Every piece of blocking work (database, Redis, password hashing) runs in a worker thread
under a deadline: if the database freezes, the client gets an error after
``REQUEST_DEADLINE_S`` and the stuck thread is abandoned, never a hung request.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledgerdrill.platforms.sandbox.erp import json2, rpc
from ledgerdrill.platforms.sandbox.erp.config import ErpConfig
from ledgerdrill.platforms.sandbox.erp.errors import CommitNotConfirmed, OdooException, ServerError
from ledgerdrill.platforms.sandbox.erp.service import ErpService
from ledgerdrill.platforms.sandbox.erp.sessions import SESSION_TTL_S

T = TypeVar("T")
log = logging.getLogger("ledgerdrill.erp")

REQUEST_DEADLINE_S = 9.0  # > statement_timeout (5 s) + pool wait (2 s)
HEALTH_DEADLINE_S = 3.0
WORKER_THREADS = 64


class ResponseHeaders:
    """Adds fixed headers to every response (which replica and release answered)."""

    def __init__(self, app: ASGIApp, headers: list[tuple[bytes, bytes]]) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(config: ErpConfig, replica: str) -> Starlette:
    service = ErpService(config, replica)
    limiter: list[anyio.CapacityLimiter] = []

    async def blocking(
        fn: Callable[[], T], *, write: bool, deadline: float = REQUEST_DEADLINE_S
    ) -> T:
        try:
            with anyio.fail_after(deadline):
                return await anyio.to_thread.run_sync(
                    fn, abandon_on_cancel=True, limiter=limiter[0]
                )
        except TimeoutError:
            if write:
                # the abandoned transaction may still commit once the database answers
                raise CommitNotConfirmed(f"no answer within {deadline:.0f} s") from None
            raise ServerError(
                f"no answer from the database within {deadline:.0f} s", "psycopg2.OperationalError"
            ) from None

    async def json_body(request: Request) -> tuple[object, dict[str, Any]]:
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise ServerError(
                "invalid JSON-RPC request body", "werkzeug.exceptions.BadRequest"
            ) from None
        if not isinstance(body, dict):
            raise ServerError("invalid JSON-RPC request", "werkzeug.exceptions.BadRequest")
        params = body.get("params")
        return body.get("id"), params if isinstance(params, dict) else {}

    async def health(request: Request) -> Response:
        headers = {"Cache-Control": "no-store"}
        info: dict[str, Any] = {"status": "pass"}
        if request.query_params.get("db_server_status") not in (None, "", "0", "false", "False"):
            try:
                ok = await blocking(service.db_ok, write=False, deadline=HEALTH_DEADLINE_S)
            except OdooException:
                ok = False
            info["db_server_status"] = ok
            if not ok:
                info["status"] = "fail"
                return JSONResponse(info, status_code=500, headers=headers)
        return JSONResponse(info, headers=headers)

    async def jsonrpc(request: Request) -> Response:
        request_id: object = None
        try:
            request_id, params = await json_body(request)
            service_name, method = str(params.get("service")), str(params.get("method"))
            write = service_name == "object"
            result = await blocking(
                lambda: service.dispatch(service_name, method, params.get("args") or []),
                write=write,
            )
            return JSONResponse(rpc.json_result(request_id, result))
        except Exception as exc:
            return _json_failure(request_id, exc)

    async def authenticate(request: Request) -> Response:
        request_id: object = None
        try:
            request_id, params = await json_body(request)
            info, session = await blocking(
                lambda: service.session_authenticate(params), write=False
            )
            response = JSONResponse(rpc.json_result(request_id, info))
            response.set_cookie(
                "session_id", session.sid, max_age=SESSION_TTL_S, httponly=True, samesite="lax"
            )
            return response
        except Exception as exc:
            return _json_failure(request_id, exc)

    async def call_kw(request: Request) -> Response:
        request_id: object = None
        try:
            request_id, params = await json_body(request)
            sid = request.cookies.get("session_id") or request.headers.get("X-Openerp-Session-Id")
            write = not service.is_read(str(params.get("method", "")))
            result = await blocking(lambda: service.call_kw(sid, params), write=write)
            return JSONResponse(rpc.json_result(request_id, result))
        except Exception as exc:
            return _json_failure(request_id, exc)

    async def session_info(request: Request) -> Response:
        request_id: object = None
        try:
            request_id, _ = await json_body(request)
            sid = request.cookies.get("session_id")
            result = await blocking(lambda: service.session_info(sid), write=False)
            return JSONResponse(rpc.json_result(request_id, result))
        except Exception as exc:
            return _json_failure(request_id, exc)

    async def xmlrpc(request: Request) -> Response:
        service_name = request.path_params["service"]
        # /xmlrpc/2/<service> answers faults with integer codes, /xmlrpc/<service> with
        # Odoo's historical strings; both dispatch the same services
        legacy = not request.url.path.startswith("/xmlrpc/2/")
        try:
            params, method = rpc.xml_request(await request.body())
            write = service_name == "object"
            result = await blocking(
                lambda: service.dispatch(service_name, method, params), write=write
            )
            body = rpc.xml_result(result)
        except Exception as exc:
            _log_unexpected(exc)
            body = rpc.xml_fault_legacy(exc) if legacy else rpc.xml_fault(exc)
        return Response(body, media_type="text/xml")

    def json_route(answer: Callable[[dict[str, Any]], Any]) -> Callable[..., Any]:
        """A web-client JSON route of Odoo's (``type='json'``, no session needed): the
        JSON-RPC envelope around ``answer(params)``, run off the event loop."""

        async def route(request: Request) -> Response:
            request_id: object = None
            try:
                request_id, params = await json_body(request)
                result = await blocking(lambda: answer(params), write=False)
                return JSONResponse(rpc.json_result(request_id, result))
            except Exception as exc:
                return _json_failure(request_id, exc)

        return route

    async def json2_rpc(request: Request) -> Response:
        """Odoo 19's ``/json/2/<model>/<method>`` (json2.py): statuses, not envelopes."""
        context: object = None
        try:
            if request.method != "POST":
                raise json2.Json2Error(
                    405, "werkzeug.exceptions.MethodNotAllowed", "only POST is allowed here"
                )
            authorization = request.headers.get("Authorization")
            database = request.headers.get("X-Odoo-Database")
            uid = await blocking(lambda: service.json2_user(authorization, database), write=False)
            try:
                body: object = json.loads(await request.body() or b"{}")
            except ValueError as exc:
                problem = f"could not parse the body as json: {exc}"
                raise json2.Json2Error(400, "werkzeug.exceptions.BadRequest", problem) from None
            call = json2.bind(request.path_params["model"], request.path_params["method"], body)
            context = call.context
            result = await blocking(
                lambda: service.json2_call(uid, call), write=not service.is_read(call.method)
            )
            return JSONResponse(result)
        except Exception as exc:
            _log_unexpected(exc)
            status, error = json2.error(exc, context if isinstance(context, dict) else None)
            return JSONResponse(error, status_code=status)

    async def doc_bearer(request: Request) -> Response:
        """``/doc-bearer/<model>.json``: what a model offers, for API discovery."""
        try:
            authorization = request.headers.get("Authorization")
            database = request.headers.get("X-Odoo-Database")
            await blocking(lambda: service.json2_user(authorization, database), write=False)
            return JSONResponse(json2.doc_model(request.path_params["model"]))
        except Exception as exc:
            _log_unexpected(exc)
            status, error = json2.error(exc)
            return JSONResponse(error, status_code=status)

    async def session_destroy(request: Request) -> Response:
        request_id: object = None
        try:
            request_id, _ = await json_body(request)
            sid = request.cookies.get("session_id")
            await blocking(lambda: service.session_destroy(sid), write=False)
            response = JSONResponse(rpc.json_result(request_id, None))
            response.delete_cookie("session_id")
            return response
        except Exception as exc:
            return _json_failure(request_id, exc)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        limiter.append(anyio.CapacityLimiter(WORKER_THREADS))
        service.open()
        log.warning("ERP replica %s up (release %s)", replica, config.release)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(service.close, abandon_on_cancel=True)

    headers = [
        (b"x-ledgerdrill-replica", replica.encode()),
        (b"x-ledgerdrill-release", config.release.encode()),
    ]
    return Starlette(
        routes=[
            Route("/web/health", health, methods=["GET"]),
            Route("/jsonrpc", jsonrpc, methods=["POST"]),
            Route("/web/session/authenticate", authenticate, methods=["POST"]),
            Route("/web/session/get_session_info", session_info, methods=["POST"]),
            Route("/web/dataset/call_kw", call_kw, methods=["POST"]),
            Route("/web/dataset/call_kw/{path:path}", call_kw, methods=["POST"]),
            Route("/web/session/destroy", session_destroy, methods=["POST"]),
            Route(
                "/web/webclient/version_info",
                json_route(lambda _: service.dispatch("common", "version", [])),
                methods=["POST"],
            ),
            Route(
                "/web/database/list",
                json_route(lambda _: service.dispatch("db", "list", [])),
                methods=["POST"],
            ),
            # every method: Odoo answers 405 itself rather than let another route take it
            Route(
                "/json/2/{model:str}/{method:str}",
                json2_rpc,
                methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            ),
            Route("/doc-bearer/{model:str}.json", doc_bearer, methods=["GET"]),
            Route("/xmlrpc/2/{service:str}", xmlrpc, methods=["POST"]),
            Route("/xmlrpc/{service:str}", xmlrpc, methods=["POST"]),
        ],
        middleware=[Middleware(ResponseHeaders, headers=headers)],
        lifespan=lifespan,
    )


def _log_unexpected(exc: BaseException) -> None:
    if not isinstance(exc, OdooException):
        log.error("unexpected error", exc_info=exc)


def _json_failure(request_id: object, exc: Exception) -> Response:
    _log_unexpected(exc)
    # Odoo answers JSON-RPC errors with HTTP 200 and the error object
    return JSONResponse(rpc.json_error(request_id, exc))
