from __future__ import annotations

import pytest

from app.core.model.taxonomy import TaxonomyError, load_taxonomy
from app.core.settings.config import ConfigError, load_settings, redact_url
from app.paths import resource


def test_defaults_are_sqlite_in_user_data_dir():
    s = load_settings({})
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("hashdesk.sqlite3")
    assert s.media_root.name == "media"


def test_postgres_url_normalised_and_password_redacted():
    s = load_settings({"HASHDESK_DATABASE_URL": "postgresql://bob:s3cret@db.example/hd"})
    assert s.database_url == "postgresql+psycopg://bob:s3cret@db.example/hd"
    assert "s3cret" not in s.database_label
    assert redact_url("postgresql+psycopg://bob:pw@h/d") == "postgresql+psycopg://bob@h/d"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"HASHDESK_DATABASE_URL": "mysql://x/y"}, "HASHDESK_DATABASE_URL='mysql://x/y'"),
        ({"HASHDESK_LEASE_SECONDS": "ten"}, "HASHDESK_LEASE_SECONDS='ten'"),
        ({"HASHDESK_LEASE_SECONDS": "1"}, "out of range"),
        ({"HASHDESK_BLUR": "-3"}, "HASHDESK_BLUR='-3'"),
    ],
)
def test_bad_values_are_named(env, named):
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert named in str(err.value)


def test_default_taxonomy_follows_gifct_labels():
    tax = load_taxonomy(resource("taxonomy.toml"))
    assert len(tax.categories) == 7
    assert tax.by_shortcut("6").label == "Attacker manifesto"
    assert tax.by_key("attack_recording").shortcut == "5"


def test_bad_taxonomy_files(tmp_path):
    p = tmp_path / "t.toml"
    p.write_text('[[category]]\nkey = "a"\nlabel = "A"\nshortcut = "0"\n')
    with pytest.raises(TaxonomyError, match="shortcut '0'"):
        load_taxonomy(p)
    p.write_text("not toml [")
    with pytest.raises(TaxonomyError, match="not valid TOML"):
        load_taxonomy(p)
    with pytest.raises(TaxonomyError, match="cannot read"):
        load_taxonomy(tmp_path / "missing.toml")
