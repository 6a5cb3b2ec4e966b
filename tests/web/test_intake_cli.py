"""`hashdesk intake serve` as a real server process, and the token and report commands, as an
admin and a lead run them: on a workstation's SQLite, and on the team server, where the intake
signs in as a worker account (ingest only) and a worker process hashes what it queued."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.core.model.domain import Role
from tests.helpers import write_samples

ROOT = Path(__file__).resolve().parents[2]
PW = "correct horse battery"


def _env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HASHDESK_") or k == "HASHDESK_ALLOW_TRUST_AUTH"
    }
    env.update(
        HASHDESK_DATABASE_URL=url,
        HASHDESK_MEDIA_ROOT=str(tmp_path / "media"),
        HASHDESK_INDEX_SNAPSHOT="off",
        HASHDESK_ADMIN_PASSWORD=PW,
        HASHDESK_NO_KEYRING="1",
        PYTHONPATH=str(ROOT),
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
    )
    env.update(extra)
    return env


def _hashdesk(env: dict[str, str], *args: str, stdin: str | None = None):
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serving(env: dict[str, str], *args: str) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "intake", "serve", "--port", str(port), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"intake serve exited: {proc.stdout.read() if proc.stdout else ''}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > end:
                pytest.fail("intake serve did not answer within 60 s")
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _token(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("hdi_")]
    assert len(lines) == 1, out.stdout
    return lines[0]


def test_the_commands_on_a_workstation(tmp_path):
    env = _env(tmp_path, f"sqlite:///{tmp_path / 'desk.sqlite3'}")
    assert _hashdesk(env, "users", "add", "root", "--role", "admin", "--password-stdin",
                     stdin=PW + "\n").returncode == 0  # fmt: skip
    added = _hashdesk(env, "users", "add", "lea", "--role", "lead", "--password-stdin",
                      "--as", "root", stdin=PW + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    refused = _hashdesk(env, "intake", "token", "create", "tcap", "--as", "lea")
    assert refused.returncode == 2 and "may not manage intake" in refused.stderr
    assert "hdi_" not in refused.stdout
    no_account = _hashdesk(env, "intake", "token", "create", "tcap")
    assert no_account.returncode == 2 and "--as" in no_account.stderr
    token = _token(_hashdesk(env, "intake", "token", "create", "tcap", "--as", "root"))
    listed = _hashdesk(env, "intake", "token", "list")
    assert "tcap" in listed.stdout and "active" in listed.stdout and token not in listed.stdout
    (picture,) = write_samples(tmp_path / "in", [11])
    auth = {"Authorization": f"Bearer {token}"}
    with _serving(env) as url, httpx.Client(base_url=url, timeout=60) as c:
        r = c.post(
            "/v1/items",
            headers=auth,
            files={"file": (picture.name, picture.read_bytes())},
            data={"metadata": json.dumps({"source": "removal_order"})},
        )
        assert r.status_code == 202, r.text
        report = c.post(
            "/v1/reports", headers=auth, json={"url": "https://x.invalid/v/9", "reason": "TCAP"}
        )
        assert report.status_code == 202, report.text
        status = _hashdesk(env, "intake", "status")
        assert "reports without a file: 1 open" in status.stdout, status.stdout + status.stderr
        shown = _hashdesk(env, "intake", "reports")
        assert "https://x.invalid/v/9" in shown.stdout and "never fetched" in shown.stdout
        rid = str(report.json()["report_id"])
        closed = _hashdesk(env, "intake", "close-report", rid, "--note", "asked", "--as", "lea")
        assert closed.returncode == 0, closed.stderr
        assert c.get(f"/v1/reports/{rid}", headers=auth).json()["status"] == "closed"
        revoked = _hashdesk(env, "intake", "token", "revoke", "tcap", "--as", "root")
        assert revoked.returncode == 0, revoked.stderr
        assert c.get("/health").status_code == 200
        assert c.post("/v1/reports", headers=auth, json={"url": "u"}).status_code == 403
    assert "revoked" in _hashdesk(env, "intake", "token", "list").stdout
    audit = _hashdesk(env, "audit", "list", "--as", "root")
    for kind in ("intake_token_created", "intake_token_revoked", "intake_report_closed"):
        assert kind in audit.stdout, audit.stdout + audit.stderr


@pytest.mark.postgres
def test_on_the_team_server_a_worker_account_serves_and_a_worker_hashes(team_server, tmp_path):
    server = team_server
    admin = server.add("boss", Role.ADMIN)
    server.add("w1", Role.WORKER, actor=admin)
    env = _env(
        tmp_path,
        server.team_url,
        HASHDESK_INGEST_MODE="queue",
        HASHDESK_INTAKE_RETRY_SECONDS="0",
        HASHDESK_WORKER_HEARTBEAT_SECONDS="1",
    )
    refused = _hashdesk(env, "intake", "token", "create", "tcap", "--as", "w1")
    assert refused.returncode == 2 and "may not manage intake" in refused.stderr
    token = _token(_hashdesk(env, "intake", "token", "create", "tcap", "--as", "boss"))
    (picture,) = write_samples(tmp_path / "in", [12])
    auth = {"Authorization": f"Bearer {token}"}
    with _serving(env, "--as", "w1") as url, httpx.Client(base_url=url, timeout=60) as c:
        r = c.post(
            "/v1/items",
            headers=auth,
            files={"file": (picture.name, picture.read_bytes())},
            data={"metadata": json.dumps({"source": "removal_order", "external_id": "T-1"})},
        )
        assert r.status_code == 202, r.text
        rid = r.json()["receipt_id"]
        assert c.get(f"/v1/receipts/{rid}", headers=auth).json()["status"] == "queued"
        report = c.post("/v1/reports", headers=auth, json={"external_id": "T-2"})
        assert report.status_code == 202, report.text
        worked = _hashdesk(env, "worker", "--as", "w1", "--until-empty")
        assert worked.returncode == 0, worked.stdout + worked.stderr
        done = c.get(f"/v1/receipts/{rid}", headers=auth).json()
        assert done["status"] == "done" and done["item_status"] == "queued", done
        revoked = _hashdesk(env, "intake", "token", "revoke", "tcap", "--as", "boss")
        assert revoked.returncode == 0, revoked.stderr
        assert c.get(f"/v1/receipts/{rid}", headers=auth).status_code == 403
    shown = _hashdesk(env, "intake", "reports", "--as", "boss")
    assert "T-2" in shown.stdout, shown.stdout + shown.stderr
