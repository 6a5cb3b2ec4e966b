"""Issue 25 (3, 13, 15 and the cosmetic list messages): every path that sets a list rule checks
its threshold the same way and the database refuses one out of range; mistyped ids and list
names, and files that hold no hash, are errors that leave the lists as they were; the audit
commands and list exports say who may run them."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.cli import build_parser, main
from app.core.exchange.entries import check_hex
from app.core.matching.hash_lists import ListPolicy, ListRule
from app.core.model.domain import Algorithm, Role
from app.storage.hash_lists import HashListError, HashListService
from app.storage.list_import import ListSettings
from tests.helpers import make_user, write_samples

PW = "correct horse battery"
HASH = "ab" * 32


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """A SQLite workstation with an admin ``root`` and a moderator ``mo``; run(*argv) returns
    (exit code, stdout, stderr)."""
    monkeypatch.setenv("HASHDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", str(tmp_path / "media"))
    monkeypatch.setattr("sys.stdin", io.StringIO(PW))
    assert main(["users", "add", "root", "--role", "admin", "--password-stdin"]) == 0
    monkeypatch.setenv("HASHDESK_ADMIN_PASSWORD", PW)
    monkeypatch.setattr("sys.stdin", io.StringIO(PW))
    add = ["users", "add", "mo", "--role", "moderator", "--password-stdin", "--as", "root"]
    assert main(add) == 0
    capsys.readouterr()

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def _lists(run) -> dict[str, list[str]]:
    code, out, _ = run("lists")
    assert code == 0
    return {line.split()[0]: line.split() for line in out.splitlines()[1:]}


def test_a_threshold_out_of_range_is_refused_by_every_path(cli, tmp_path, db):
    src = tmp_path / "list.txt"
    src.write_text(f"pdq {HASH}\n")
    imp = ["lists", "import", str(src), "--list", "p", "--policy", "resolve", "--as", "root"]
    code, _, err = cli(*imp, "--threshold", "200")
    assert code == 2 and "PDQ threshold 200 is out of range: use 0 to 64" in err
    assert "p" not in _lists(cli)  # nothing imported, no list made
    assert cli(*imp, "--threshold", "20")[0] == 0
    code, _, err = cli("lists", "set", "p", "--threshold", "65", "--as", "root")
    assert code == 2 and "PDQ threshold 65 is out of range: use 0 to 64" in err
    assert _lists(cli)["p"][2] == "20"
    with pytest.raises(ValueError, match="out of range"):
        ListRule("p", ListPolicy.RESOLVE, pdq_threshold=-1)
    # The import service itself, and the database underneath (SQLite and PostgreSQL).
    admin = make_user(db, "admin1", Role.ADMIN)
    with pytest.raises(HashListError, match="out of range"):
        HashListService(db).import_file(
            src, "q", actor=admin, settings=ListSettings(pdq_threshold=200)
        )
    HashListService(db).import_file(src, "q", actor=admin)
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(text("UPDATE hash_lists SET pdq_threshold = 200 WHERE name = 'q'"))


def test_mistyped_ids_and_names_are_errors(cli, tmp_path):
    code, out, err = cli("lists", "disable", "9999", "--reason", "typo", "--as", "root")
    assert code == 1 and "no hash-list entry #9999: nothing changed" in err and out == ""
    code, _, err = cli("lists", "set", "nosuchlist", "--policy", "off", "--as", "root")
    assert code == 2 and "there is no list 'nosuchlist'" in err
    assert "nosuchlist" not in _lists(cli)
    code, out, _ = cli("lists", "set", "news", "--kind", "allow", "--create", "--as", "root")
    assert code == 0 and "made news" in out
    assert _lists(cli)["news"][1] == "allow"


def test_a_file_without_a_hash_imports_nothing_and_leaves_the_list(cli, tmp_path):
    src = tmp_path / "list.csv"
    src.write_text(f"signal_type,signal_str,collab,category,tags\npdq,{HASH},gifct,P,\n")
    base = ["lists", "import", "--list", "gifct", "--as", "root"]
    assert cli(*base[:2], str(src), *base[2:], "--policy", "queue")[0] == 0
    before = _lists(cli)["gifct"]
    code, _, err = cli(*base[:2], str(src), *base[2:], "--format", "vics", "--policy", "resolve")
    assert code == 2 and "nothing imported, list gifct left as it was" in err
    pictures = tmp_path / "pictures"
    write_samples(pictures, [1, 2])
    code, _, err = cli(*base[:2], str(pictures), *base[2:], "--policy", "resolve")
    assert code == 2 and err.count("\n") == 1
    picture = next(pictures.iterdir())
    for fmt in ((), ("--format", "pytx"), ("--format", "vpdq")):
        code, _, err = cli(*base[:2], str(picture), *base[2:], *fmt, "--policy", "resolve")
        assert code == 2 and err.count("\n") == 1, err
    assert _lists(cli)["gifct"] == before  # policy, counts, last import: untouched
    code, _, err = cli("lists", "import", str(pictures), "--list", "fresh", "--as", "root")
    assert code == 2 and "fresh" not in _lists(cli)


def test_who_may_run_the_audit_and_export_commands(cli, tmp_path):
    for sub in ("verify", "checkpoint", "list"):
        code, out, err = cli("audit", sub, "--as", "mo")
        assert code == 2 and f"audit {sub} needs a lead or admin: mo is a moderator" in err
        assert out == ""
    assert cli("audit", "list", "--as", "root")[0] == 0
    code, _, err = cli("lists", "export", str(tmp_path / "o.txt"), "--format", "pytx")
    assert code == 2 and "exporting a hash list needs a lead or admin: give --as NAME" in err


def test_the_list_messages_read_whole():
    helps = build_parser()._subparsers._group_actions[0].choices["lists"]
    feedback = next(
        a.help for a in helps._subparsers._group_actions[0]._choices_actions
        if a.dest == "feedback"
    )  # fmt: skip
    assert feedback.endswith("feedback")
    with pytest.raises(ValueError) as bad:
        check_hex(Algorithm.PDQ, "zzzz-not-hex")
    assert str(bad.value) == "PDQ hash 'zzzz-not-hex' is not hexadecimal"


def test_users_list_says_when_there_are_none(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HASHDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    monkeypatch.setenv("HASHDESK_MEDIA_ROOT", str(tmp_path / "media"))
    assert main(["users", "list"]) == 0
    assert capsys.readouterr().out.startswith("no users yet: add the first admin with")
