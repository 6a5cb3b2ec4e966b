"""The HTTP intake checked against its own OpenAPI description by schemathesis (its command
line, against a real uvicorn on a free port, on SQLite and PostgreSQL): thousands of generated
requests, valid and not, with the source's token and without; no server error, every answer's
status code, content type and body as the description says, the token required.

Not ``negative_data_rejection``: in a multipart body every part is bytes, so the "negative"
cases schemathesis makes for the file POST (an object or a null where the description says a
string) reach the server as valid parts (``{}``, ``null``) and are rightly accepted; the
intake's refusals of bad input are tests/web/test_intake_http.py's."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.web.test_intake_http import serve

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "ignored_auth",
        "missing_required_header",
        "unsupported_method",
    )
)


def test_schemathesis_finds_nothing_against_the_live_description(db, tmp_path):
    with serve(db, tmp_path, max_bytes=1024 * 1024, rate_per_minute=1_000_000) as s:
        command = [sys.executable, "-m", "schemathesis.cli", "run", f"{s.url}/openapi.json"]
        command += ["-H", f"Authorization: Bearer {s.token}", "--checks", CHECKS]
        command += ["--max-examples", "30", "--seed", "24", "--no-color"]
        run = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=900,
        )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    assert "No issues found" in out, out[-6000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", out)
    assert generated is not None, out[-3000:]
    assert int(generated.group(1)) >= 200 and generated.group(1) == generated.group(2)
    assert "Operations:       5 selected / 5 total" in out
