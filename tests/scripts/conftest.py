"""Fixtures for the tests of migration scripts: an initialised SQLite app."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from flask import Flask

from helpers import invoke


@pytest.fixture
def app(make_app: t.Any, sqlite_url: str) -> Flask:
    app = make_app(sqlite_url)
    assert invoke(app, "init").exit_code == 0
    return t.cast(Flask, app)


@pytest.fixture
def versions(tmp_path: Path) -> Path:
    return tmp_path / "migrations" / "versions"
