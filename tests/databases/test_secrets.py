"""No password is ever printed: in errors, verbose output, tracebacks or echo mode."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest

from flask_migrate_ext.databases.urls import masked
from helpers import invoke
from helpers import run_flask

SECRET = "s3cretPW"

APP = """
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_ext import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = {url!r}
app.config["SQLALCHEMY_ECHO"] = True
Migrate(app, SQLAlchemy(app))
"""

URLS = {
    "postgresql-refused": f"postgresql+psycopg://root:{SECRET}@127.0.0.1:1/test",
    "postgresql-query": f"postgresql+psycopg://root@127.0.0.1:1/test?password={SECRET}",
    "postgresql-bad-login": f"postgresql+psycopg://nobody:{SECRET}@127.0.0.1:5432/test",
    "mariadb-refused": f"mysql+pymysql://root:{SECRET}@127.0.0.1:1/test",
    "mariadb-denied": f"mysql+pymysql://nobody:{SECRET}@127.0.0.1:3306/test",
    "bad-driver": f"postgresql+nosuchdriver://root:{SECRET}@127.0.0.1/test",
}


@pytest.mark.parametrize("url", URLS.values(), ids=URLS.keys())
def test_failing_runs_never_print_the_password(
    url: str, tmp_path: Path, make_app: t.Any, sqlite_url: str
) -> None:
    assert invoke(make_app(sqlite_url), "init").exit_code == 0
    (tmp_path / "app.py").write_text(APP.format(url=url))
    for args in (
        ["db", "upgrade"],
        ["db", "current", "-v"],
        ["db", "--verbose", "check"],
    ):
        done = run_flask(tmp_path, "--app", "app", *args)
        output = done.stdout + done.stderr
        assert SECRET not in output, (args, output)
        assert done.returncode != 0, (args, output)


def test_masked_hides_password_and_secret_query_values() -> None:
    url = f"postgresql://u:{SECRET}@h/db?password={SECRET}&sslmode=require"
    shown = masked(url)
    assert SECRET not in shown
    assert shown == "postgresql://u:***@h/db?password=***&sslmode=require"
    assert masked("not a url") == "<database URL>"
