"""SQL is never formatted from data: no statement handed to a driver or to ``text()`` is put
together with an f-string, ``%``, ``+`` or ``.format`` (names go through ``psycopg.sql`` or the
server's ``format('%I')``, values through bind parameters). Checked on the syntax tree of every
module of the application, variables assigned in the same scope included."""

from __future__ import annotations

import ast
import re
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"

#: Calls that run or build a statement: ``x.execute(stmt)``, ``text(stmt)``, ``SQL(stmt)``...
SINK_METHODS = {"execute", "executemany", "exec_driver_sql", "executescript", "copy"}
SINK_FUNCTIONS = {"text", "SQL", "DDL"}


def _built(node: ast.AST, assigned: dict[str, ast.AST]) -> bool:
    """Whether ``node`` is a string put together at run time."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return isinstance(node.left, (ast.Constant, ast.JoinedStr)) and isinstance(
            getattr(node.left, "value", ""), str
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        parts = (node.left, node.right)
        stringy = any(isinstance(p, (ast.Constant, ast.JoinedStr)) for p in parts)
        return stringy and not all(isinstance(p, ast.Constant) for p in parts)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and isinstance(node.func.value, ast.Constant)
        and isinstance(node.func.value.value, str)
    ):
        return True
    if isinstance(node, ast.Name) and node.id in assigned:
        return _built(assigned[node.id], {})
    return False


def _sink_name(call: ast.Call) -> str | None:
    f = call.func
    if isinstance(f, ast.Attribute) and f.attr in SINK_METHODS | SINK_FUNCTIONS:
        return f.attr
    if isinstance(f, ast.Name) and f.id in SINK_FUNCTIONS:
        return f.id
    return None


def sql_built_from_data(source: str) -> tuple[list[int], int]:
    """The lines where a statement is put together at run time, and how many calls were looked
    at (the guard against passing because nothing was found)."""
    tree = ast.parse(source)
    scopes: list[ast.AST] = [tree] + [
        n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    bad: set[int] = set()
    seen = 0
    for scope in scopes:
        body = list(ast.walk(scope))
        assigned = {
            t.id: n.value
            for n in body
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        for n in body:
            if isinstance(n, ast.Call) and _sink_name(n) and n.args:
                seen += 1
                if _built(n.args[0], assigned):
                    bad.add(n.lineno)
    return sorted(bad), seen


#: What a statement looks like, in the fixed parts of an f-string or a %-template.
SQL_WORDS = re.compile(
    r"\b(CREATE|ALTER|DROP|GRANT|REVOKE)\s+(OR\s+REPLACE\s+)?"
    r"(FUNCTION|TRIGGER|ROLE|POLICY|TABLE|SCHEMA|INDEX|VIEW)\b"
    r"|\bSELECT\b.*\bFROM\b|\bINSERT\s+INTO\b|\bDELETE\s+FROM\b|\bUPDATE\s+\w+\s+SET\b"
    r"|^\s*(LISTEN|NOTIFY|COPY|GRANT|REVOKE)\b",
    re.S,
)


def sql_templates(source: str) -> list[int]:
    """The lines of f-strings and %-templates that hold a statement, wherever they go (the old
    program was one f-string returned by a helper, then executed)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.JoinedStr) and any(
            isinstance(v, ast.FormattedValue) for v in node.values
        ):
            fixed = " ".join(
                v.value
                for v in node.values
                if isinstance(v, ast.Constant) and isinstance(v.value, str)
            )
        elif (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Mod)
            and isinstance(node.left, ast.Constant)
            and isinstance(node.left.value, str)
        ):
            fixed = node.left.value
        else:
            continue
        if SQL_WORDS.search(fixed):
            found.append(node.lineno)
    return found


def test_no_statement_in_storage_is_an_f_string():
    offenders = [
        f"{p.relative_to(APP.parent)}:{line}"
        for p in sorted((APP / "storage").rglob("*.py"))
        for line in sql_templates(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    # guard: the old program's shapes are recognised
    assert sql_templates('x = f"""\nCREATE OR REPLACE FUNCTION {s}.hd_trusted()"""')
    assert sql_templates('x = f\'GRANT "{a}" TO "{b}"\'')
    assert sql_templates('x = f"SELECT entry_hash FROM {table} ORDER BY id"')
    assert not sql_templates('x = f"{owner} cannot create roles"')


def test_no_statement_in_the_application_is_formatted_from_data():
    offenders, seen = [], 0
    for path in sorted(APP.rglob("*.py")):
        lines, n = sql_built_from_data(path.read_text(encoding="utf-8"))
        seen += n
        offenders += [f"{path.relative_to(APP.parent)}:{line}" for line in lines]
    assert offenders == []
    assert seen > 100  # guard: the statements were found and looked at


def test_the_hooks_grep_finds_nothing_in_storage():
    pattern = re.compile(r"""execute\((f"|f'|"[^"]*" *%)""")
    hits = [
        f"{p.relative_to(APP.parent)}:{i}"
        for p in sorted((APP / "storage").rglob("*.py"))
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []
    assert pattern.search('conn.execute(f"LISTEN {CHANNEL}")')  # guard: the pattern bites


def test_the_check_catches_each_way_of_formatting():
    # What the storage layer did before (server_security.install, chain_head, the NOTIFY and
    # the bulk import), and the other spellings: each must be caught.
    bad = [
        """conn.execute(text(f'GRANT "{group}" TO "{person}"'))""",
        """s.execute(text(f"SELECT entry_hash FROM {table} ORDER BY id DESC LIMIT 1"))""",
        """conn.execute(f"LISTEN {CHANNEL}")""",
        """cur.executemany(f"INSERT INTO hash_list ({cols}) VALUES ({marks})", batch)""",
        """cur.copy(f"COPY hash_list ({cols}) FROM STDIN")""",
        """conn.exec_driver_sql("DROP ROLE %s" % name)""",
        """conn.execute(text("DROP ROLE " + name))""",
        """conn.execute(text("DROP ROLE {}".format(name)))""",
        """def f(name):\n    q = f"DROP ROLE {name}"\n    conn.execute(text(q))""",
        """def g():\n    s = f'x{y}'\n    cur.execute(s)""",
    ]
    for snippet in bad:
        lines, seen = sql_built_from_data(snippet)
        assert lines, snippet
        assert seen >= 1
    good = [
        """conn.execute(text("SELECT set_config('hashdesk.role_prefix', :p, true)"), {"p": p})""",
        """conn.execute(SQL("LISTEN {}").format(Identifier(CHANNEL)))""",
        """conn.execute(text("SELECT 1 " "FROM users"))""",
        """print(f"{prefix}u_<name>")""",
    ]
    for snippet in good:
        assert sql_built_from_data(snippet)[0] == [], snippet
