"""The HTTP intake (`hashdesk intake serve`): sources POST flagged files, or reports without a
file, with the drop folder's sidecar metadata, authenticated by their own token.

FastAPI describes the API (``/openapi.json``); uvicorn serves it. Plain HTTP on the given
address: TLS is the reverse proxy's job (README, "HTTP intake").

Order of checks for a request under ``/v1/`` (:class:`IntakeGate`, before any of the body is
read): the token (401 unknown, 403 revoked), the token's rate (429 with Retry-After), the
content type (415), a declared length over the limit (413). The body then streams to a spool
file on disk (Starlette's parser keeps at most 1 MiB of a file part in memory); the stream is
cut, and the answer is 413, as soon as it passes the limit. When the upload is complete the
token is checked again (a token revoked mid-upload: 403, nothing recorded), the metadata is
parsed by the drop folder's own parser (app.core.ingest.sidecar: 400 naming the field), and the
file goes to ``AppContext.intake.receive`` (into the media store, the arrival recorded, its job
queued; the same content twice, even at once: one item). The time received is when the POST
arrived: a source's deadline runs from then.

A report without a file is kept for the leads (app.storage.intake_tokens.IntakeReportService):
its URL is text, never fetched.
"""

from __future__ import annotations

import contextlib
import math
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import anyio
import uvicorn
from fastapi import FastAPI, File, Form, Header, Request, Security, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import __version__
from app.compose import AppContext
from app.core.errors import Refusal, describe, is_transient
from app.core.ingest.sidecar import IntakeMeta, SidecarError, parse_sidecar
from app.core.model.domain import UserInfo, utcnow
from app.storage.intake import IntakeError
from app.storage.intake_tokens import IntakeSource, ReportError, ReportInfo, TokenRefused

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ITEMS, REPORTS = "/v1/items", "/v1/reports"
#: Room in a file's POST for its metadata part and the multipart boundaries.
MULTIPART_SLACK = 256 * 1024
#: The largest report (metadata only).
MAX_REPORT_BYTES = 256 * 1024
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]")


class ErrorBody(BaseModel):
    """Every refusal: one line saying what is wrong, and the field when one is."""

    error: str = Field(description="what is wrong, in one line")
    field: str | None = Field(None, description="the request field at fault, if one is")


class ItemReceipt(BaseModel):
    receipt_id: int = Field(description="this arrival (GET /v1/receipts/{receipt_id})")
    sha256: str
    duplicate: bool = Field(
        description="the same content was already received: no second job, one more sighting"
    )
    received_at: datetime = Field(description="when the POST arrived (UTC)")
    deadline: datetime | None = Field(description="explicit, or the source's, from receipt")


class ReceiptStatus(BaseModel):
    receipt_id: int
    sha256: str
    status: str = Field(
        description="queued (its job has not recorded it yet), done (recorded: item_id), "
        "refused (error says why)"
    )
    item_id: int | None = None
    item_status: str | None = None
    error: str | None = None
    received_at: datetime
    deadline: datetime | None = None


class ReportReceipt(BaseModel):
    report_id: int = Field(description="GET /v1/reports/{report_id}")
    received_at: datetime
    deadline: datetime | None
    status: str = Field(description="open until a lead closes it, then closed")


class Health(BaseModel):
    status: str
    database: str
    version: str


class Metadata(BaseModel):
    """The sidecar's fields (the drop folder's JSON beside a file), all optional. ``source``
    defaults to the token's name; ``source_url`` (or ``url``) is text, never fetched."""

    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(None, max_length=128)
    external_id: str | None = Field(None, max_length=256)
    source_url: str | None = Field(None, max_length=8192)
    url: str | None = Field(None, max_length=8192)
    reason: str | None = Field(None, max_length=4096)
    reporter: str | None = Field(None, max_length=256)
    score: float | str | None = None
    received_at: str | None = Field(
        None, description="ISO 8601: the reporter's own, earlier time received"
    )
    deadline: str | None = Field(None, description="ISO 8601")


#: A row's number in a path: what the database's ids can hold.
RowId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]


def _link(operation: str, parameter: str, field_name: str) -> dict[str, Any]:
    """An OpenAPI link: the answer's ``field_name`` is ``parameter`` of ``operation``."""
    return {
        "links": {
            operation: {
                "operationId": operation,
                "parameters": {parameter: f"$response.body#/{field_name}"},
            }
        }
    }


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    what = {
        400: "a bad field (named)",
        401: "no token, or an unknown one",
        403: "the token is revoked",
        404: "no such receipt for this token",
        413: "the body is larger than the intake takes",
        415: "the wrong content type",
        429: "too many requests for this token: wait Retry-After seconds",
        503: "the database is unreachable: try again later",
    }
    return {c: {"model": ErrorBody, "description": what[c]} for c in codes}


def _json_error(status: int, message: str, field_name: str | None = None, **headers: str):
    return JSONResponse(
        {"error": message, "field": field_name}, status_code=status, headers=headers or None
    )


class Refused(Refusal):
    """A request refused with ``status`` (turned into an ErrorBody by the app)."""

    def __init__(
        self, status: int, message: str, field_name: str | None = None, **headers: str
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.headers = status, message, field_name, headers


@dataclass
class HttpIntake:
    """What the intake serves with: the application, who it acts as (a team server: an
    account that may ingest), its limits."""

    ctx: AppContext
    actor: UserInfo | None = None
    max_bytes: int = 2048 * 1024 * 1024
    rate_per_minute: int = 600
    spool_dir: Path | None = None
    _limiter: MovingWindowRateLimiter = field(init=False)
    _rate: Any = field(init=False)

    def __post_init__(self) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._rate = RateLimitItemPerMinute(self.rate_per_minute)

    def retry_after(self, source: str) -> int | None:
        """None if ``source`` may make one more request now (and counts it); otherwise how many
        seconds until it may."""
        if self._limiter.hit(self._rate, source):
            return None
        reset, _left = self._limiter.get_window_stats(self._rate, source)
        return max(1, math.ceil(reset - time.time()))

    def check(self, token: str | None) -> IntakeSource:
        return self.ctx.intake_tokens.check(token)


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _sp, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _refusal(exc: BaseException) -> Refused:
    """A database failure as the client sees it: 503 when retrying may help, else 500's line."""
    if isinstance(exc, Refused):
        return exc
    if isinstance(exc, TokenRefused):
        status = 403 if exc.revoked else 401
        return Refused(status, str(exc), **({} if exc.revoked else {"WWW-Authenticate": "Bearer"}))
    if is_transient(exc) or isinstance(exc, IntakeError):
        # The database out of reach, the media store full: nothing was recorded, try later.
        return Refused(503, describe(exc), **{"Retry-After": "30"})
    raise exc


class IntakeGate:
    """Pure ASGI, in front of the routes: who (token), how often (rate), what (content type),
    how much (length, counted as the body streams). Nothing of the body is read before the
    token and the rate have passed."""

    def __init__(self, app: Callable[..., Awaitable[None]], intake: HttpIntake) -> None:
        self.app = app
        self.intake = intake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["received_at"] = utcnow()  # the POST arrived: the deadline runs from here
        path, method = scope["path"], scope["method"]
        if not path.startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            token = _bearer(headers.get("authorization"))
            try:
                state["source"] = await anyio.to_thread.run_sync(self.intake.check, token)
            except Exception as exc:
                raise _refusal(exc) from None
            state["token"] = token
            wait = self.intake.retry_after(state["source"].name)
            if wait is not None:
                raise Refused(
                    429,
                    f"more than {self.intake.rate_per_minute} requests a minute for "
                    f"{state['source'].name!r}: try again in {wait} s",
                    **{"Retry-After": str(wait)},
                )
            cap = self._gate(headers, path, method)
        except Refused as r:
            await _json_error(r.status, r.message, r.field, **r.headers)(scope, receive, send)
            return
        if cap is None:
            await self.app(scope, receive, send)
            return
        await self._capped(scope, receive, send, cap)

    def _gate(self, headers: Headers, path: str, method: str) -> int | None:
        """The content type and the declared length of a POST; the body's cap (None for
        other requests)."""
        if method != "POST" or path not in (ITEMS, REPORTS):
            return None
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        want = "multipart/form-data" if path == ITEMS else "application/json"
        if ctype != want:
            raise Refused(415, f"content type {ctype or '(none)'!r}: send {want}", "content-type")
        cap = self.intake.max_bytes + MULTIPART_SLACK if path == ITEMS else MAX_REPORT_BYTES
        length = headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > cap:
            name = "file" if path == ITEMS else None
            raise Refused(413, self._too_large(path), name)
        return cap

    def _too_large(self, path: str) -> str:
        if path == ITEMS:
            return (
                f"the file is larger than the intake takes: at most {_mb(self.intake.max_bytes)} "
                "MB (HASHDESK_INTAKE_MAX_MB)"
            )
        return f"a report is at most {MAX_REPORT_BYTES // 1024} KiB of JSON"

    async def _capped(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        """Run the route with the body counted as it streams: past ``cap`` the stream ends
        (the rest is never read) and the answer is 413, whatever the route made of it."""
        seen = 0
        over = False

        async def counted() -> Message:
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            if not over:
                await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not over:
                raise
        if over:
            response = _json_error(413, self._too_large(scope["path"]), "file", Connection="close")
            await response(scope, receive, send)


def _utc(at: datetime | None) -> datetime | None:
    """A stored time (naive UTC) as the answer says it: with its zone."""
    return None if at is None else at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.0f}" if n >= 1024 * 1024 else f"{n / 1024 / 1024:.2f}"


def _spool_name(filename: str | None) -> str:
    """The uploaded file's own name, made safe for a file system (kept as the original name)."""
    name = Path((filename or "").replace("\\", "/")).name
    name = _SAFE_NAME.sub("_", name).strip(" .")[:120]
    return name or "upload"


def _parse(body: str | bytes, source: IntakeSource, received_at: datetime, intake) -> IntakeMeta:
    try:
        meta = parse_sidecar(
            body,
            default_source=source.name,
            received_at=received_at,
            source_deadlines=intake.ctx.settings.source_deadlines,
        )
    except SidecarError as exc:
        raise Refused(400, f"metadata: {exc}", "metadata") from None
    if meta.received_at > received_at:
        raise Refused(
            400,
            f"metadata: received_at {meta.received_at.isoformat()} is after the POST arrived "
            f"({received_at.isoformat()})",
            "metadata",
        )
    return meta


def build_app(intake: HttpIntake) -> FastAPI:
    """The intake's ASGI application."""
    app = FastAPI(
        title="Hashdesk intake",
        version=__version__,
        description=(
            "Flagged files and reports in, for the Hashdesk review queue. Each source sends its "
            "own token (`Authorization: Bearer ...`, made by an admin with `hashdesk intake "
            "token create`). Metadata: the drop folder's sidecar fields. URLs are kept as text, "
            "never fetched."
        ),
        docs_url=None,
        redoc_url=None,
    )
    bearer = HTTPBearer(auto_error=False, description="the source's intake token")

    @app.exception_handler(Refused)
    async def _refused(_request: Request, exc: Refused) -> JSONResponse:
        return _json_error(exc.status, exc.message, exc.field, **exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path")]
        name = loc[-1] if loc else None
        return _json_error(400, f"{name or 'request'}: {first.get('msg', 'invalid')}", name)

    @app.exception_handler(Exception)
    async def _internal(_request: Request, exc: Exception) -> JSONResponse:
        # Logged with its traceback by the server; the client reads one line, never a trace.
        return _json_error(500, f"internal error: {describe(exc)}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = 400 if exc.status_code == 422 else exc.status_code
        return _json_error(status, str(exc.detail), None, **(exc.headers or {}))

    @app.get(
        "/health",
        response_model=Health,
        responses=_errors(503),
        tags=["service"],
        operation_id="health",
    )
    def health() -> Health | JSONResponse:
        """Whether the intake runs and reaches its database (no token needed)."""
        try:
            with intake.ctx.db.session() as s:
                s.execute(text("SELECT 1"))
        except Exception as exc:
            return _json_error(503, f"database: {describe(exc)}")
        return Health(status="ok", database="ok", version=__version__)

    @app.post(
        ITEMS,
        status_code=202,
        response_model=ItemReceipt,
        responses={
            202: _link("get_receipt", "receipt_id", "receipt_id"),
            **_errors(400, 401, 403, 413, 415, 429, 503),
        },
        operation_id="post_item",
        dependencies=[Security(bearer)],
        tags=["intake"],
    )
    def post_item(
        request: Request,
        file: Annotated[UploadFile, File(description="the flagged file")],
        metadata: Annotated[
            str, Form(description="JSON object: the sidecar's fields (see the Metadata schema)")
        ] = "{}",
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                max_length=100,
                description="the sender's own key for this arrival: sent again (a retry after "
                "a lost answer), the same receipt, no second arrival",
            ),
        ] = None,
    ) -> ItemReceipt:
        """A flagged file with its metadata: stored, its arrival recorded and its job queued
        before the answer (202)."""
        state = request.state
        with tempfile.TemporaryDirectory(prefix="hashdesk-intake-", dir=intake.spool_dir) as d:
            path = Path(d) / _spool_name(file.filename)
            with path.open("wb") as out:
                shutil.copyfileobj(file.file, out, 1024 * 1024)
            size = path.stat().st_size
            if size > intake.max_bytes:
                raise Refused(
                    413,
                    f"the file is larger than the intake takes: at most {_mb(intake.max_bytes)} "
                    "MB (HASHDESK_INTAKE_MAX_MB)",
                    "file",
                )
            try:  # the upload is complete: is the token still good?
                source = intake.check(state.token)
            except Exception as exc:
                raise _refusal(exc) from None
            meta = _parse(metadata, source, state.received_at, intake)
            try:
                got = intake.ctx.intake.receive(
                    path=path,
                    meta=meta,
                    via="http",
                    intake_source_id=source.token_id,
                    actor=intake.actor,
                    original_name=file.filename or None,
                    key=f"http:{source.token_id}:{idempotency_key}" if idempotency_key else None,
                )
            except Exception as exc:
                raise _refusal(exc) from None
        return ItemReceipt(
            receipt_id=got.receipt_id,
            sha256=got.sha256,
            duplicate=got.duplicate,
            received_at=_utc(meta.received_at),
            deadline=_utc(meta.deadline),
        )

    @app.post(
        REPORTS,
        status_code=202,
        response_model=ReportReceipt,
        responses={
            202: _link("get_report", "report_id", "report_id"),
            **_errors(400, 401, 403, 413, 415, 429, 503),
        },
        operation_id="post_report",
        dependencies=[Security(bearer)],
        tags=["intake"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": Metadata.model_json_schema()}},
            }
        },
    )
    async def post_report(request: Request) -> ReportReceipt:
        """A report without a file (a URL, an entity, a platform): kept for the leads, who see
        it in `hashdesk intake reports` and the intake's status. The URL is never fetched.
        Needs ``source_url`` (or ``url``) or ``external_id``."""
        body = await request.body()
        state = request.state
        receipt = await anyio.to_thread.run_sync(_record_report, intake, body, state)
        return _report_receipt(receipt)

    @app.get(
        "/v1/receipts/{receipt_id}",
        response_model=ReceiptStatus,
        operation_id="get_receipt",
        responses=_errors(400, 401, 403, 404, 429, 503),
        dependencies=[Security(bearer)],
        tags=["intake"],
    )
    def get_receipt(request: Request, receipt_id: RowId) -> ReceiptStatus:
        """Where a file this token sent stands: queued, being hashed, done (its item and the
        item's status), or unreadable with the reason."""
        source: IntakeSource = request.state.source
        try:
            found = intake.ctx.intake_tokens.receipt(receipt_id)
        except Exception as exc:
            raise _refusal(exc) from None
        if found is None or found.intake_source_id != source.token_id:
            raise Refused(404, f"no receipt {receipt_id} for {source.name!r}", "receipt_id")
        return ReceiptStatus(
            receipt_id=found.receipt_id,
            sha256=found.sha256,
            status=found.status,
            item_id=found.item_id,
            item_status=found.item_status,
            error=found.error,
            received_at=_utc(found.received_at),
            deadline=_utc(found.deadline),
        )

    @app.get(
        "/v1/reports/{report_id}",
        response_model=ReportReceipt,
        operation_id="get_report",
        responses=_errors(400, 401, 403, 404, 429, 503),
        dependencies=[Security(bearer)],
        tags=["intake"],
    )
    def get_report(request: Request, report_id: RowId) -> ReportReceipt:
        """Whether a report this token sent is still open."""
        source: IntakeSource = request.state.source
        try:
            found = intake.ctx.intake_reports.get(report_id)
        except Exception as exc:
            raise _refusal(exc) from None
        if found is None or found.token != source.name:
            raise Refused(404, f"no report {report_id} for {source.name!r}", "report_id")
        return _report_receipt(found)

    app.add_middleware(IntakeGate, intake=intake)

    def openapi() -> dict[str, Any]:
        # A request the routes cannot read is a 400 naming the field here, never FastAPI's 422.
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for operations in spec.get("paths", {}).values():
                for op in operations.values():
                    op.get("responses", {}).pop("422", None)
            schemas = spec.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _record_report(intake: HttpIntake, body: bytes, state: Any) -> ReportInfo:
    try:
        source = intake.check(state.token)  # the body is in: is the token still good?
    except Exception as exc:
        raise _refusal(exc) from None
    meta = _parse(body, source, state.received_at, intake)
    if not (meta.source_url or meta.external_id):
        raise Refused(400, "a report needs source_url (or url) or external_id", "source_url")
    try:
        return intake.ctx.intake_reports.record(
            source=meta.source,
            external_id=meta.external_id,
            source_url=meta.source_url,
            reason=meta.reason,
            reporter=meta.reporter,
            score=meta.score,
            received_at=meta.received_at,
            deadline=meta.deadline,
            deadline_after=None,
            token=source,
            actor=intake.actor,
        )
    except ReportError as exc:
        raise Refused(400, str(exc)) from None
    except Exception as exc:
        raise _refusal(exc) from None


def _report_receipt(r: ReportInfo) -> ReportReceipt:
    return ReportReceipt(
        report_id=r.id,
        received_at=_utc(r.received_at),
        deadline=_utc(r.deadline),
        status="open" if r.closed_at is None else "closed",
    )


def uvicorn_config(app: FastAPI, host: str, port: int, **kw: Any) -> uvicorn.Config:
    """uvicorn as the intake runs it: no server header, the proxy's X-Forwarded-For trusted
    from the loopback only (the reverse proxy in front, README)."""
    return uvicorn.Config(app, host=host, port=port, server_header=False, proxy_headers=True, **kw)


def serve(intake: HttpIntake, host: str, port: int) -> None:
    """Serve until interrupted (Ctrl-C, SIGTERM)."""
    uvicorn.Server(uvicorn_config(build_app(intake), host, port, log_level="info")).run()


@contextlib.contextmanager
def running(intake: HttpIntake, host: str = "127.0.0.1") -> Iterator[str]:
    """The intake served on a free port in a thread (tests, the benchmark); its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(build_app(intake), host, port, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the intake server did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
