"""How every failure reaches a client: a small JSON body, never a stack trace, SQL text or database message.

- `ApiError` and the auth layers' exceptions -> their status with `{"error": ..., ...}`.
- Validation errors -> 422 with the location and kind of each problem (never the offending input).
- Anything else -> 500 `{"error": "internal_error", "request_id": ...}`, logged server side on one line
  with the exception and, for database errors, the SQLSTATE.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.identity import NotAMember
from app.auth.token import InvalidToken
from app.db import sqlstate_of
from app.governance import UnknownRoles

__all__ = [
    "REQUEST_ID_HEADER",
    "ApiError",
    "ErrorBoundary",
    "current_request_id",
    "install_error_handlers",
    "log_exception",
]

log = logging.getLogger("app.errors")

REQUEST_ID_HEADER = "X-Request-ID"
_request_id: ContextVar[str] = ContextVar("request_id", default="-")

_STATUS_ERRORS = {
    400: "bad_request",
    401: "invalid_token",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


class ApiError(Exception):
    """A refusal with its HTTP status and a JSON body `{"error": error, **details}`."""

    def __init__(self, status: int, error: str, *, headers: dict[str, str] | None = None, **details: Any) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.headers = headers
        self.details = details

    @classmethod
    def not_found(cls) -> ApiError:
        """The one answer for "does not exist" and "exists in another organisation": they must look alike."""
        return cls(404, "not_found")


def current_request_id() -> str:
    """The id of the request being served (`-` outside a request)."""
    return _request_id.get()


def log_exception(exc: BaseException, *, message: str, level: int = logging.ERROR, **fields: object) -> None:
    """Log one line about `exc`: its type, its first message line, its SQLSTATE if any, and `fields`."""
    parts = [f"{key}={value}" for key, value in fields.items()]
    parts.append(f"request_id={current_request_id()}")
    state = sqlstate_of(exc)
    if state is not None:
        parts.append(f"sqlstate={state}")
    cause = getattr(exc, "orig", None) or exc
    first_line = (str(cause).strip().splitlines() or [""])[0][:300]
    parts.append(f"exception={type(cause).__module__}.{type(cause).__qualname__}: {first_line}")
    log.log(level, "%s %s", message, " ".join(parts))
    log.debug("stack of request_id=%s", current_request_id(), exc_info=exc)


def _body(error: str, **details: Any) -> dict[str, Any]:
    return {"error": error, **details}


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(_body(exc.error, **exc.details), status_code=exc.status, headers=exc.headers)


async def _invalid_token(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidToken)
    if getattr(request.app.state, "log_refusals", True):
        log.info("token refused reason=%s path=%s request_id=%s", exc.reason, request.url.path, current_request_id())
    return JSONResponse(
        _body("invalid_token", reason=exc.reason),
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


async def _not_a_member(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(_body("forbidden", reason="not_a_member"), status_code=403)


async def _unknown_roles(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UnknownRoles)
    return JSONResponse(_body("invalid_request", reason="unknown_role", roles=list(exc.names)), status_code=422)


def allowed_methods(request: Request) -> tuple[set[str], bool]:
    """The methods the app documents at the request's path (its OpenAPI schema), and whether they are those of a
    literal path (no parameter): `/api/contacts/search` is the search's path, not a contact whose id is `search`."""
    literal: set[str] = set()
    templated: set[str] = set()
    path = request.url.path
    for template, item in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods = {method.upper() for method in item if method in _HTTP_METHODS}
            (templated if "{" in template else literal).update(methods)
    return (literal, True) if literal else (templated, False)


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _method_not_allowed(methods: set[str]) -> JSONResponse:
    return JSONResponse(_body("method_not_allowed"), status_code=405, headers={"Allow": ", ".join(sorted(methods))})


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    methods, literal = allowed_methods(request)
    if literal and request.method not in methods and all(e.get("loc", ("",))[0] == "path" for e in exc.errors()):
        # PATCH /api/contacts/search: the path is the search's, which does not take PATCH; not a malformed id
        return _method_not_allowed(methods)
    # Location, message and kind only: the input (which may be anything a client sent) is not echoed.
    detail = [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": error.get("type"),
        }
        for error in exc.errors()
    ]
    return JSONResponse(_body("invalid_request", detail=detail), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:  # Starlette names the one route it matched; `Allow` lists every method of the path
        methods = allowed_methods(request)[0] or set((exc.headers or {}).get("Allow", "").replace(" ", "").split(","))
        return _method_not_allowed(methods - {""})
    error = _STATUS_ERRORS.get(exc.status_code, "http_error")
    return JSONResponse(_body(error), status_code=exc.status_code, headers=exc.headers)


def install_error_handlers(app: FastAPI, *, leak_database_errors: bool = False, log_refusals: bool = True) -> None:
    """Register the JSON answers for every expected refusal, and the boundary for everything else.

    `leak_database_errors` is the `sql_error_leaks` fault switch: a database error's text (the statement
    included) goes into the 500's body. `log_refusals=False` is the `refusals_not_logged` one.
    """
    app.state.log_refusals = log_refusals
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(InvalidToken, _invalid_token)
    app.add_exception_handler(NotAMember, _not_a_member)
    app.add_exception_handler(UnknownRoles, _unknown_roles)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(ErrorBoundary, leak_database_errors=leak_database_errors)


class ErrorBoundary:
    """ASGI middleware: gives each request an id, and turns any unhandled exception into the generic 500."""

    def __init__(self, app: ASGIApp, *, leak_database_errors: bool = False) -> None:
        self.app = app
        self.leak_database_errors = leak_database_errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        token = _request_id.set(request_id)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.lower().encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # The client went away mid-request (its body cut short): nobody to answer, and nothing wrong here.
            log.info(
                "client disconnected method=%s path=%s request_id=%s",
                scope.get("method"),
                scope.get("path"),
                request_id,
            )
        except Exception as exc:
            log_exception(exc, message="unhandled error", method=scope.get("method"), path=scope.get("path"))
            if started:  # too late for a clean answer; the server closes the connection
                raise
            details: dict[str, Any] = {"request_id": request_id}
            if self.leak_database_errors and isinstance(exc, DBAPIError):
                details["detail"] = str(exc)  # the fault: the database's message and statement, to the client
            response = JSONResponse(_body("internal_error", **details), status_code=500)
            await response(scope, receive, send_with_id)
        finally:
            _request_id.reset(token)
