"""The HTTP intake measured (`hashdesk bench --http [URL]`) and fed to the intake drill
(`hashdesk bench --drill URL --http-files N`): the time from a POST to its item in the queue.

"In the queue" is two moments: the answer (202: the arrival is on the record and its job
queued, committed before the answer is sent) and the item in the review queue (its receipt
``done``: hashed, matched and recorded). Without a job queue (SQLite) both are the answer:
the job runs before it. With one, a worker records the item after the answer; the feeder polls
the receipt to time that too.

Everything is real: `hashdesk intake serve` as its own process, httpx POSTs from a thread pool,
the token made with `hashdesk intake token create`.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
ADMIN, ADMIN_PASSWORD = "bench-admin", "bench admin password"


def _hashdesk(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if out.returncode != 0:
        raise RuntimeError(f"hashdesk {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_token(env: dict[str, str], name: str) -> str:
    """A token for ``name`` made through the CLI by an admin (the first one of a fresh
    database, made here)."""
    env = {**env, "HASHDESK_ADMIN_PASSWORD": ADMIN_PASSWORD}
    if ADMIN not in _hashdesk(env, "users", "list"):  # a fresh database: the first admin
        add = ("users", "add", ADMIN, "--role", "admin", "--password-stdin")
        _hashdesk(env, *add, stdin=ADMIN_PASSWORD + "\n")
    out = _hashdesk(env, "intake", "token", "create", name, "--as", ADMIN)
    return next(line for line in out.splitlines() if line.startswith("hdi_"))


@contextlib.contextmanager
def intake_server(env: dict[str, str], log: Path | None = None) -> Iterator[str]:
    """`hashdesk intake serve` on a free port of this machine; its base URL."""
    port = _free_port()
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "intake", "serve", "--port", str(port)],
        env={"HASHDESK_INTAKE_RATE_PER_MINUTE": "1000000", **env},
        cwd=ROOT,
        stdout=out,
        stderr=out,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"hashdesk intake serve exited with {proc.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > end:
                raise TimeoutError("hashdesk intake serve did not answer within 120 s")
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Timings:
    """Seconds from each POST's start to its answer, and to its item in the review queue."""

    to_answer: list[float] = field(default_factory=list)
    to_item: list[float] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # any answer but 202, or a failed request

    @staticmethod
    def summary(values: list[float]) -> dict[str, float]:
        if not values:
            return {"n": 0, "median_ms": float("nan"), "p95_ms": float("nan")}
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
        return {
            "n": len(values),
            "median_ms": statistics.median(ordered) * 1000,
            "p95_ms": p95 * 1000,
        }


def post_file(client: httpx.Client, token: str, path: Path, meta: dict) -> tuple[float, dict]:
    """POST one file; the seconds to its answer and the answer (raises on anything but 202)."""
    t0 = time.perf_counter()
    with path.open("rb") as f:
        r = client.post(
            "/v1/items",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": (path.name, f, "application/octet-stream")},
            data={"metadata": json.dumps(meta)},
        )
    took = time.perf_counter() - t0
    if r.status_code != 202:
        raise RuntimeError(f"{path.name}: HTTP {r.status_code}: {r.text[:200]}")
    return took, r.json()


@dataclass
class HttpFeeder:
    """The drill's HTTP way in (app.tools.intake_bench.Feeder): `hashdesk intake serve` on the
    drill's database, ``concurrency`` senders POSTing its share of the files, each POST timed
    to its answer and (a poller) to its item recorded."""

    work: Path
    concurrency: int = 4
    name: str = "HTTP intake"
    timings: Timings = field(default_factory=Timings)
    _stack: contextlib.ExitStack | None = None
    _url: str = ""
    _token: str = ""

    def open(self, env: dict[str, str]) -> None:
        self._token = make_token(env, "drill")
        self._stack = contextlib.ExitStack()
        self._url = self._stack.enter_context(intake_server(env, self.work / "intake-http.log"))

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def feed(self, files: list[Path], stop: threading.Event) -> None:
        started: dict[int, float] = {}
        lock = threading.Lock()

        def one(path: Path) -> None:
            if stop.is_set():
                return
            with httpx.Client(base_url=self._url, timeout=120) as c:
                t0 = time.perf_counter()
                try:
                    took, got = post_file(c, self._token, path, {"source": "drill-http"})
                except Exception as exc:  # kept and reported: the drill says what went wrong
                    with lock:
                        self.timings.refused.append(f"{path.name}: {exc}")
                    return
            with lock:
                self.timings.to_answer.append(took)
                started[got["receipt_id"]] = t0

        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(one, files))
        a = Timings.summary(self.timings.to_answer)
        print(  # at once: the figure survives a drill stopped before its end
            f"  HTTP: {a['n']} POSTs answered under the drill's load (job queued): median "
            f"{a['median_ms']:.0f} ms, p95 {a['p95_ms']:.0f} ms; "
            f"{len(self.timings.refused)} refused",
            flush=True,
        )
        self._await_items(started, stop)

    def _await_items(self, started: dict[int, float], stop: threading.Event) -> None:
        """Poll each receipt until its item is recorded (the review queue), timing it."""
        pending = dict(started)
        auth = {"Authorization": f"Bearer {self._token}"}
        with httpx.Client(base_url=self._url, timeout=60) as c:
            while pending and not stop.is_set():
                for rid, t0 in list(pending.items()):
                    status = c.get(f"/v1/receipts/{rid}", headers=auth).json().get("status")
                    if status in ("done", "refused"):
                        self.timings.to_item.append(time.perf_counter() - t0)
                        del pending[rid]
                time.sleep(0.05)


def bench_http_idle(url: str | None, posts: int = 50, work: Path | None = None) -> dict:
    """POST ``posts`` distinct pictures one at a time to an idle intake: the time to the answer
    and to the item in the review queue. ``url``: None, a throwaway SQLite (jobs run in the
    intake's process); a PostgreSQL server, a throwaway schema with its job queue and one
    `hashdesk worker`."""
    import shutil
    import tempfile

    from app.tools.intake_bench import hashdesk as start_hashdesk
    from app.tools.intake_bench import make_images, process_env, throwaway_schema

    own = work is None
    work = Path(tempfile.mkdtemp(prefix="hashdesk-http-bench-")) if work is None else work
    try:
        files = make_images(work / "files", posts, size=(1280, 720))
        with contextlib.ExitStack() as stack:
            if url is None:
                env = process_env(f"sqlite:///{work / 'bench.sqlite3'}", work)
                env["HASHDESK_INGEST_MODE"] = "local"
                where = "SQLite, no queue: the job runs in the intake's process"
            else:
                env = process_env(stack.enter_context(throwaway_schema(url)), work)
                where = "PostgreSQL job queue, 1 idle `hashdesk worker`"
            token = make_token(env, "bench")
            base = stack.enter_context(intake_server(env, work / "serve.log"))
            if url is not None:
                worker = start_hashdesk(env, "worker", log=work / "worker.log")
                stack.callback(_stop_one, worker)
            timings = Timings()
            auth = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, timeout=120) as c:
                warm = make_images(work / "warm", 1, size=(1280, 720), start=posts + 1)
                post_file(c, token, warm[0], {"source": "bench"})  # first-use costs aside
                for f in files:
                    t0 = time.perf_counter()
                    took, got = post_file(c, token, f, {"source": "bench"})
                    timings.to_answer.append(took)
                    while True:  # the queue idle: wait for this item before the next POST
                        st = c.get(f"/v1/receipts/{got['receipt_id']}", headers=auth).json()
                        if st["status"] != "queued":
                            timings.to_item.append(time.perf_counter() - t0)
                            break
                        time.sleep(0.005)
        return {
            "where": where,
            "posts": posts,
            "to_answer": Timings.summary(timings.to_answer),
            "to_item": Timings.summary(timings.to_item),
        }
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


def _stop_one(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def print_bench_http(url: str | None, posts: int = 50) -> dict:
    print(
        f"HTTP intake, idle: {posts} JPEGs 1280x720 POSTed one at a time to `hashdesk intake "
        "serve` (a minute)…",
        flush=True,
    )
    r = bench_http_idle(url, posts)
    a, i = r["to_answer"], r["to_item"]
    print(f"  {r['where']}")
    print(
        f"  POST to its answer (arrival recorded, job queued): median {a['median_ms']:.0f} ms, "
        f"p95 {a['p95_ms']:.0f} ms ({a['n']} POSTs)"
    )
    print(
        f"  POST to its item in the review queue: median {i['median_ms']:.0f} ms, "
        f"p95 {i['p95_ms']:.0f} ms"
    )
    return r


def print_drill_http(url: str, files: int, workers: int, kill_every: float, http_files: int) -> int:
    """The intake drill (app.tools.intake_bench.print_drill) with ``http_files`` more files
    POSTed to `hashdesk intake serve`, then the POSTs' times under the drill's load."""
    import shutil
    import tempfile

    from app.tools.intake_bench import print_drill

    work = Path(tempfile.mkdtemp(prefix="hashdesk-http-drill-"))
    http = HttpFeeder(work)
    try:
        code = print_drill(url, files, workers, kill_every, extra_feeders=[(http, http_files)])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    a, i = Timings.summary(http.timings.to_answer), Timings.summary(http.timings.to_item)
    print(
        f"  HTTP under the drill's load: POST to its answer (job queued) median "
        f"{a['median_ms']:.0f} ms, p95 {a['p95_ms']:.0f} ms; to its item in the review "
        f"queue median {i['median_ms']:.0f} ms, p95 {i['p95_ms']:.0f} ms ({a['n']} POSTs, "
        f"{len(http.timings.refused)} refused)"
    )
    for line in http.timings.refused[:10]:
        print(f"    refused: {line}")
    return code
