"""`hashdesk incident declare|assign|list|conclude` and the re-scan `lists import` prints: the
lead's commands on a SQLite workstation; a wrong value is one line naming it, nothing made."""

from __future__ import annotations

import io

import pytest

from app.cli import main
from app.core.model.domain import Role
from app.storage.db import open_database
from app.storage.users import UserService
from tests.helpers import ingest, write_samples

PW = "correct horse battery"


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys, store):
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("HASHDESK_DATABASE_URL", url)
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", str(tmp_path / "media"))
    db = open_database(url)
    users = UserService(db)
    for name, role in [("root", Role.ADMIN), ("lena", Role.LEAD), ("mo", Role.MODERATOR)]:
        users.add(name, PW, role)
    ingest(db, store, write_samples(tmp_path / "in", [91, 92]))
    db.dispose()
    monkeypatch.setenv("HASHDESK_ADMIN_PASSWORD", PW)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_a_lead_declares_assigns_lists_and_concludes(cli):
    code, out, err = cli(
        "incident", "declare", "attack", "--label", "CIP-9", "--seed-item", "1",
        "--seed-hash", "pdq:" + "0f" * 32, "--source", "upload", "--as", "lena",
    )  # fmt: skip
    assert code == 0, err
    assert "declared: attack" in out and "CIP-9" in out
    assert "re-scan (declare:1)" in out and "new hash(es) searched" in out
    assert cli("incident", "assign", "attack", "mo", "--as", "lena")[1].strip() == (
        "attack: assigned mo"
    )
    code, out, _ = cli("incident", "list")
    assert code == 0 and "attack" in out and "ACTIVE" in out and "assigned: mo" in out
    code, out, _ = cli("incident", "conclude", "attack", "--as", "lena")
    assert code == 0 and "concluded: attack" in out
    assert "concluded" in cli("incident", "list")[1]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["declare", "a b", "--label", "L"], "incident name 'a b' is not allowed"),
        (["declare", "x", "--label", "L", "--seed-hash", "pdq:zz"], "64 hex digits"),
        (["declare", "x", "--label", "L", "--seed-item", "99"], "seed item 99 does not exist"),
        (["conclude", "nope"], "there is no incident 'nope'"),
        (["assign", "nope", "mo"], "there is no incident 'nope'"),
    ],
)
def test_a_wrong_value_is_one_line_naming_it(cli, argv, words):
    code, out, err = cli("incident", *argv, "--as", "lena")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and words in err and "Traceback" not in err
    assert "no incidents" in cli("incident", "list")[1]


def test_a_moderator_may_not_declare(cli):
    code, _, err = cli("incident", "declare", "x", "--label", "L", "--as", "mo")
    assert code == 2 and "mo (moderator) may not manage incidents" in err
    assert "no incidents" in cli("incident", "list")[1]
