"""RFC 9457 problem details: every error the API returns is ``application/problem+json``.

A :class:`Problem` names what went wrong (``type`` is a stable slug under ``/problems/``), and for limits
which limit and how to narrow the request (``limit``, ``value``, ``hint`` extension members).
"""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

MEDIA_TYPE = "application/problem+json"

_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
           406: "Not acceptable", 409: "Conflict", 413: "Request too large", 415: "Unsupported media type",
           422: "Invalid request", 503: "Service unavailable"}


class ProblemDetail(BaseModel):
    """The body of every error response (RFC 9457)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class Problem(Exception):
    def __init__(self, status: int, slug: str, detail: str, *, title: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.slug, self.detail = status, slug, detail
        self.title = title or _TITLES.get(status, "Error")
        self.headers = headers
        self.extra = extra


def limit_exceeded(limit: str, value: object, maximum: object, hint: str) -> Problem:
    """A request over a configured limit: 422 naming the limit and how to narrow the request."""
    return Problem(422, "limit-exceeded", f"{limit} is {value}, over the limit of {maximum}: {hint}",
                   title="Request over a limit", limit=limit, value=value, maximum=maximum, hint=hint)


def not_found(what: str) -> Problem:
    return Problem(404, "not-found", f"{what} not found")


def problem_response(request: Request, status: int, slug: str, title: str, detail: str,
                     headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail,
                            "instance": request.url.path, **extra}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


async def _problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(request, exc.status, exc.slug, exc.title, exc.detail, exc.headers, **exc.extra)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = _TITLES.get(exc.status_code, "Error")
    slug = title.lower().replace(" ", "-")
    return problem_response(request, exc.status_code, slug, title, str(exc.detail), dict(exc.headers or {}) or None)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"where": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
              for e in exc.errors()]
    detail = "; ".join(f"{e['where']}: {e['message']}" for e in errors) or "invalid request"
    return problem_response(request, 422, "invalid-parameter", "Invalid request", detail, errors=errors)


async def _timeout(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 503, "statement-timeout", "Query took too long",
                            "the query ran past the statement timeout: narrow the request (a shorter range, a wider "
                            "interval, fewer devices) or try again when the server is less busy",
                            {"Retry-After": "5"}, limit="statement_timeout")


async def _db_down(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 503, "database-unavailable", "Database unavailable",
                            "the database cannot be reached; try again shortly", {"Retry-After": "5"})


async def _busy(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, 503, "busy", "Too many requests in flight",
                            "no database connection came free in time; retry shortly", {"Retry-After": "2"})


def install(app: FastAPI) -> None:
    app.add_exception_handler(PoolTimeout, _busy)
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(psycopg.errors.QueryCanceled, _timeout)
    app.add_exception_handler(psycopg.OperationalError, _db_down)


# Documented on every route that can fail in these ways (OpenAPI; schemathesis checks responses against it).
PROBLEM_CONTENT = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": _TITLES[code], "content": PROBLEM_CONTENT}
    for code in (401, 403, 404, 422, 503)
}
