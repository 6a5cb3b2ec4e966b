"""The HTTP intake (issue 24) on a real uvicorn on a free port, spoken to with httpx, on SQLite
and PostgreSQL: a file and its metadata become a receipt and an item whose deadline runs from
the POST; a report without a file waits for the leads, its URL never fetched; and the bad
input: unknown and revoked tokens (also revoked mid-upload), too large (refused while it
streams), bad metadata, the wrong content type, too many requests, the same file twice at once.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from app.compose import AppContext, open_context
from app.core.model.domain import UserInfo
from app.core.settings.config import load_settings
from app.storage.models import IntakeReceipt, IntakeReport, Item, Sighting
from app.web.intake_http import HttpIntake, running
from tests.helpers import write_samples

PW = "correct horse battery"
BOUNDARY = "hd-test-boundary"


@dataclass
class Served:
    ctx: AppContext
    intake: HttpIntake
    url: str
    admin: UserInfo
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)

    def count(self, model) -> int:
        with self.ctx.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(model)))


@contextmanager
def serve(db, tmp_path, **limits) -> Iterator[Served]:
    settings = load_settings(
        {"HASHDESK_DATABASE_URL": "sqlite:///unused", "HASHDESK_MEDIA_ROOT": str(tmp_path / "m")}
    )
    with ExitStack() as stack:
        ctx = open_context(settings, db=db, journal_dir=tmp_path)
        stack.callback(ctx.close)
        admin = ctx.users.create_first_admin("root", PW)
        _info, token = ctx.intake_tokens.create("tcap", actor=admin)
        intake = HttpIntake(ctx, spool_dir=tmp_path, **limits)
        url = stack.enter_context(running(intake))
        yield Served(ctx, intake, url, admin, token)


@pytest.fixture
def served(db, tmp_path):
    with serve(db, tmp_path, max_bytes=4 * 1024 * 1024, rate_per_minute=10_000) as s:
        yield s


def _post(c: httpx.Client, s: Served, path, metadata=None, auth=None, name=None):
    files = {"file": (name or path.name, path.read_bytes(), "application/octet-stream")}
    data = {"metadata": metadata if isinstance(metadata, str) else json.dumps(metadata or {})}
    return c.post("/v1/items", headers=auth or s.auth, files=files, data=data)


@contextmanager
def _watched_url() -> Iterator[tuple[str, list[str]]]:
    """A real web server the metadata's URL points at, counting every request it gets."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/video/1", hits
    finally:
        server.shutdown()
        server.server_close()


def _aware(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


# -- the way in ---------------------------------------------------------------------------------


def test_a_file_with_its_metadata_becomes_an_item_its_deadline_from_the_post(served, tmp_path):
    s = served
    (picture,) = write_samples(tmp_path / "in", [1])
    with _watched_url() as (url, hits), s.client() as c:
        before = datetime.utcnow()
        r = _post(
            c, s, picture, {"source": "removal_order", "external_id": "TCO-7", "url": url,
                            "reason": "removal order", "reporter": "authority", "score": 0.9},
        )  # fmt: skip
        after = datetime.utcnow()
        assert r.status_code == 202, r.text
        got = r.json()
        received = _aware(got["received_at"])
        assert before <= received <= after
        assert _aware(got["deadline"]) == received + timedelta(hours=1)
        assert got["duplicate"] is False and len(got["sha256"]) == 64
        status = c.get(f"/v1/receipts/{got['receipt_id']}", headers=s.auth).json()
        assert status["status"] == "done" and status["item_status"] == "queued"
        assert status["sha256"] == got["sha256"]
    with s.ctx.db.session() as sess:
        sighting = sess.scalars(select(Sighting)).one()
        item = sess.get(Item, status["item_id"])
        assert item is not None and item.sha256 == got["sha256"]
        assert (sighting.source, sighting.external_id, sighting.source_url) == (
            "removal_order",
            "TCO-7",
            url,
        )
        assert sighting.flagged_at == received and sighting.original_name == picture.name
        assert sighting.deadline == received + timedelta(hours=1)
    assert hits == []  # the URL was kept as text, never fetched


def test_the_source_defaults_to_the_tokens_name(served, tmp_path):
    s = served
    (picture,) = write_samples(tmp_path / "in", [2])
    with s.client() as c:
        r = c.post("/v1/items", headers=s.auth, files={"file": ("p.png", picture.read_bytes())})
    assert r.status_code == 202, r.text
    assert r.json()["deadline"] is None
    with s.ctx.db.session() as sess:
        assert sess.scalars(select(Sighting.source)).all() == ["tcap"]


def test_a_report_without_a_file_waits_for_the_leads_its_url_never_fetched(served):
    s = served
    with _watched_url() as (url, hits), s.client() as c:
        r = c.post(
            "/v1/reports",
            headers=s.auth,
            json={"source": "removal_order", "url": url, "external_id": "TCO-8"},
        )
        assert r.status_code == 202, r.text
        rid = r.json()["report_id"]
        assert r.json()["status"] == "open"
        received = _aware(r.json()["received_at"])
        assert _aware(r.json()["deadline"]) == received + timedelta(hours=1)
        assert c.get(f"/v1/reports/{rid}", headers=s.auth).json()["status"] == "open"
        # Another source sees nothing of it.
        _i, other = s.ctx.intake_tokens.create("partner", actor=s.admin)
        gone = c.get(f"/v1/reports/{rid}", headers={"Authorization": f"Bearer {other}"})
        assert gone.status_code == 404 and gone.json()["field"] == "report_id"
        # Nothing to act on: refused, naming the field.
        bare = c.post("/v1/reports", headers=s.auth, json={"reason": "look"})
        assert bare.status_code == 400 and bare.json()["field"] == "source_url"
    (report,) = s.ctx.intake_reports.list()
    assert (report.id, report.source_url, report.token) == (rid, url, "tcap")
    assert s.ctx.intake_reports.open_count()[0] == 1
    assert hits == [] and s.count(Item) == 0


def test_health_and_the_openapi_description(served):
    with served.client() as c:
        assert c.get("/health").json()["status"] == "ok"
        spec = c.get("/openapi.json").json()
    assert {"/v1/items", "/v1/reports", "/v1/receipts/{receipt_id}", "/health"} <= set(
        spec["paths"]
    )
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    documented = spec["paths"]["/v1/items"]["post"]["responses"]
    assert {"202", "400", "401", "403", "413", "415", "429"} <= set(documented)


# -- bad input ----------------------------------------------------------------------------------


def test_no_token_or_an_unknown_one_is_401_a_revoked_one_403(served, tmp_path):
    s = served
    (picture,) = write_samples(tmp_path / "in", [3])
    with s.client() as c:
        none = c.post("/v1/items", files={"file": ("a", b"x")})
        assert none.status_code == 401 and none.headers["www-authenticate"] == "Bearer"
        wrong = _post(c, s, picture, auth={"Authorization": "Bearer hdi_not-one-of-ours"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "unknown token"
        basic = _post(c, s, picture, auth={"Authorization": "Basic cm9vdDpwdw=="})
        assert basic.status_code == 401
        s.ctx.intake_tokens.revoke("tcap", actor=s.admin)
        revoked = _post(c, s, picture)
        assert revoked.status_code == 403 and "revoked" in revoked.json()["error"]
        assert c.get("/v1/receipts/1", headers=s.auth).status_code == 403
        assert c.post("/v1/reports", headers=s.auth, json={"url": "x"}).status_code == 403
    assert s.count(IntakeReceipt) == 0 and s.count(Item) == 0 and s.count(IntakeReport) == 0


def _streamed(head_meta: dict, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """A multipart body sent as it is made (chunked): the metadata part, then the file's."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'
        f"{json.dumps(head_meta)}\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; "
        f'name="file"; filename="upload.bin"\r\nContent-Type: application/octet-stream'
        "\r\n\r\n"
    ).encode()
    yield from chunks
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def _until(condition, what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_a_token_revoked_mid_upload_records_nothing(served):
    s = served
    rate = s.intake._rate

    def chunks() -> Iterator[bytes]:
        yield b"\x89PNG" + b"a" * 65536
        # The gate has let the request in (the token checked, the request counted) and the
        # body is streaming: now the admin revokes the token.
        _until(
            lambda: s.intake._limiter.get_window_stats(rate, "tcap").remaining < 10_000,
            "the gate to let the upload in",
        )
        s.ctx.intake_tokens.revoke("tcap", actor=s.admin)
        for _ in range(16):
            yield b"b" * 65536

    with s.client() as c:
        r = c.post(
            "/v1/items",
            headers={**s.auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            content=_streamed({"source": "partner"}, chunks()),
        )
    assert r.status_code == 403 and "revoked" in r.json()["error"], r.text
    assert s.count(IntakeReceipt) == 0 and s.count(Item) == 0 and s.count(Sighting) == 0


def test_too_large_is_refused_while_it_streams_and_by_its_declared_length(db, tmp_path):
    with serve(db, tmp_path, max_bytes=1024 * 1024, rate_per_minute=10_000) as s:
        sent = 0

        def endless() -> Iterator[bytes]:
            nonlocal sent
            chunk = b"z" * 65536
            while sent < 2 * 1024**3:  # 2 GB, if nobody stopped it
                sent += len(chunk)
                yield chunk

        headers = {**s.auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        with s.client() as c:
            r = c.post("/v1/items", headers=headers, content=_streamed({}, endless()))
            assert r.status_code == 413, r.text
            assert r.json()["field"] == "file" and "at most 1 MB" in r.json()["error"]
            # Cut off near the limit: the rest of the 2 GB was never sent.
            assert sent < 64 * 1024 * 1024
            # Declared too large: refused before a byte of the body is read.
            big = c.post(
                "/v1/items",
                headers={**s.auth, "Content-Type": "multipart/form-data; boundary=x"},
                content=b"x" * (2 * 1024 * 1024),
            )
            assert big.status_code == 413
            # Just under the limit: taken.
            ok = c.post(
                "/v1/items",
                headers=s.auth,
                files={"file": ("fits.bin", b"\x00" * (1024 * 1024 - 10))},
            )
            assert ok.status_code == 202, ok.text
        assert s.count(IntakeReceipt) == 1


@pytest.mark.parametrize(
    ("metadata", "named"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"colour": "red"}', "unknown field colour"),
        ('{"score": "high"}', "score"),
        ('{"deadline": "tomorrow"}', "deadline"),
        ('{"received_at": "2999-01-01T00:00:00"}', "after the POST arrived"),
        ('{"source": 7}', "source"),
    ],
)
def test_bad_metadata_is_400_naming_the_field_and_records_nothing(
    served, tmp_path, metadata, named
):
    s = served
    (picture,) = write_samples(tmp_path / "in", [4])
    with s.client() as c:
        r = _post(c, s, picture, metadata)
        assert r.status_code == 400, r.text
        assert r.json()["field"] == "metadata" and named in r.json()["error"]
        report = c.post(
            "/v1/reports",
            headers={**s.auth, "Content-Type": "application/json"},
            content=metadata.encode(),
        )
        assert report.status_code == 400 and named in report.json()["error"]
    assert s.count(IntakeReceipt) == 0 and s.count(IntakeReport) == 0


def test_a_missing_file_part_and_wrong_content_types(served):
    s = served
    with s.client() as c:
        r = c.post("/v1/items", headers=s.auth, data={"metadata": "{}"}, files={"x": ("a", b"")})
        assert r.status_code == 400 and r.json()["field"] == "file"
        r = c.post("/v1/items", headers=s.auth, json={"source": "x"})
        assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]
        r = c.post("/v1/reports", headers=s.auth, files={"file": ("a", b"x")})
        assert r.status_code == 415 and "application/json" in r.json()["error"]
        r = c.get("/v1/receipts/not-a-number", headers=s.auth)
        assert r.status_code == 400 and r.json()["field"] == "receipt_id"
        r = c.get("/v1/receipts/999999", headers=s.auth)
        assert r.status_code == 404
    assert s.count(IntakeReceipt) == 0


def test_too_many_requests_is_429_with_retry_after_for_that_token_only(db, tmp_path):
    with serve(db, tmp_path, max_bytes=1024 * 1024, rate_per_minute=3) as s:
        _i, other = s.ctx.intake_tokens.create("partner", actor=s.admin)
        with s.client() as c:
            codes = [c.get("/v1/receipts/1", headers=s.auth).status_code for _ in range(4)]
            assert codes == [404, 404, 404, 429]
            r = c.post("/v1/reports", headers=s.auth, json={"url": "https://x.invalid/"})
            assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
            assert "3 requests a minute" in r.json()["error"]
            mine = c.get("/v1/receipts/1", headers={"Authorization": f"Bearer {other}"})
            assert mine.status_code == 404  # another source has its own allowance
        assert s.count(IntakeReport) == 0


def _post_at_once(s: Served, picture, n: int) -> list[httpx.Response]:
    """``n`` real POSTs of the same file, each on its own connection, released together."""
    start = threading.Barrier(n)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def post_one() -> None:
        with s.client() as c:
            start.wait(30)
            r = _post(c, s, picture, {"source": "partner", "external_id": "same"})
        with lock:
            answers.append(r)

    threads = [threading.Thread(target=post_one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return answers


def test_the_same_file_posted_at_once_many_times_is_one_item(served, tmp_path):
    s = served
    (picture,) = write_samples(tmp_path / "in", [5])
    n = 8
    answers = _post_at_once(s, picture, n)
    assert [r.status_code for r in answers] == [202] * n, [r.text for r in answers]
    assert len({r.json()["receipt_id"] for r in answers}) == n
    assert len({r.json()["sha256"] for r in answers}) == 1
    assert s.count(Item) == 1  # one item, however the posts interleaved
    assert s.count(IntakeReceipt) == n  # each arrival on the record


def test_each_of_the_same_file_posted_at_once_becomes_a_sighting(served, tmp_path):
    s = served
    (picture,) = write_samples(tmp_path / "in", [7])
    n = 8
    assert [r.status_code for r in _post_at_once(s, picture, n)] == [202] * n
    with s.ctx.db.session() as sess:
        states = list(sess.scalars(select(IntakeReceipt.state)))
    assert states == ["done"] * n and s.count(Sighting) == n and s.count(Item) == 1


def test_the_receipt_is_the_senders_alone(served, tmp_path):
    s = served
    (picture,) = write_samples(tmp_path / "in", [6])
    _i, other = s.ctx.intake_tokens.create("partner", actor=s.admin)
    with s.client() as c:
        rid = _post(c, s, picture).json()["receipt_id"]
        assert c.get(f"/v1/receipts/{rid}", headers=s.auth).status_code == 200
        theirs = c.get(f"/v1/receipts/{rid}", headers={"Authorization": f"Bearer {other}"})
        assert theirs.status_code == 404 and theirs.json()["field"] == "receipt_id"


def test_a_retry_with_the_same_idempotency_key_is_the_same_arrival(served, tmp_path):
    s = served
    (picture,) = write_samples(tmp_path / "in", [8])
    with s.client() as c:
        key = {**s.auth, "Idempotency-Key": "tcap-report-1234"}
        first = _post(c, s, picture, {"external_id": "r1"}, auth=key)
        again = _post(c, s, picture, {"external_id": "r1"}, auth=key)
        other = _post(c, s, picture, {"external_id": "r1"})  # no key: a second arrival
        too_long = _post(c, s, picture, auth={**s.auth, "Idempotency-Key": "k" * 101})
    assert first.status_code == again.status_code == other.status_code == 202
    assert again.json()["receipt_id"] == first.json()["receipt_id"] and again.json()["duplicate"]
    assert other.json()["receipt_id"] != first.json()["receipt_id"]
    assert too_long.status_code == 400 and too_long.json()["field"] == "Idempotency-Key"
    assert s.count(IntakeReceipt) == 2 and s.count(Item) == 1
