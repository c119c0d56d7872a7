"""Helpers for tests: run commands, look into databases."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import textwrap
import time
import typing as t
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner


class AppFactory(t.Protocol):
    """The ``make_app`` fixture."""

    def __call__(
        self,
        url: str,
        columns: dict[str, t.Any] | None = None,
        **migrate_kwargs: t.Any,
    ) -> Flask: ...


class MultidbFactory(t.Protocol):
    """The ``make_multidb_app`` fixture."""

    def __call__(
        self, binds: dict[str, str], user_email: bool = False, user_model: bool = True
    ) -> Flask: ...


R = t.TypeVar("R")


def ok(result: R) -> R:
    """Assert that a command succeeded (a CliRunner result or a finished
    subprocess), showing what it printed if not; return it."""
    code = getattr(result, "exit_code", None)
    if code is None:
        code = getattr(result, "returncode")  # noqa: B009
    stdout = getattr(result, "stdout", "")
    stderr = getattr(result, "stderr", "")
    exc_info = getattr(result, "exc_info", None)
    error = f"\n{exc_info[1]!r}" if exc_info and code != 0 else ""
    assert code == 0, f"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}{error}"
    assert "Traceback" not in f"{stdout}{stderr}"
    return result


def invoke(app: Flask, *args: str, **kwargs: t.Any) -> t.Any:
    """Run ``flask db <args>`` against ``app`` in-process."""
    runner: FlaskCliRunner = app.test_cli_runner()
    return runner.invoke(args=["db", *args], **kwargs)


#: Tables flask_migrate_ext keeps for itself (the ledger, the table lock).
OWN_TABLES = {"flask_migrate_ext_log", "flask_migrate_ext_lock"}


def table_names(url: str, own: bool = False) -> set[str]:
    """The database's tables; with ``own``, ours (the ledger) included."""
    engine = sa.create_engine(url)
    try:
        names = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    return names if own else names - OWN_TABLES


def version_rows(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return []
            rows = conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            return sorted(row[0] for row in rows)
    finally:
        engine.dispose()


def run_flask(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``flask <args>`` as a user would, in a subprocess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


REVISION = '''
"""{message}"""
import time
from alembic import op
import sqlalchemy as sa

revision = {revision!r}
down_revision = {down!r}
branch_labels = {branch_labels!r}
depends_on = {depends_on!r}


def upgrade():
{upgrade}


def downgrade():
{downgrade}
'''


def write_revision(
    versions: Path,
    revision: str,
    down: str | tuple[str, ...] | None,
    upgrade: str,
    downgrade: str,
    *,
    message: str | None = None,
    branch_labels: str | tuple[str, ...] | None = None,
    depends_on: str | tuple[str, ...] | None = None,
) -> None:
    (versions / f"{revision}.py").write_text(
        REVISION.format(
            message=revision if message is None else message,
            revision=revision,
            down=down,
            branch_labels=branch_labels,
            depends_on=depends_on,
            upgrade=textwrap.indent(textwrap.dedent(upgrade).strip(), "    "),
            downgrade=textwrap.indent(textwrap.dedent(downgrade).strip(), "    "),
        )
    )


#: Flask-Migrate's env.py calls Flask-SQLAlchemy's deprecated ``get_engine``.
ignore_get_engine = pytest.mark.filterwarnings(
    "ignore:'get_engine' is deprecated:DeprecationWarning"
)


#: Environment variables the two apps of :func:`write_switch_apps` read.
SWITCH_URL_VAR = "FMX_SWITCH_DATABASE_URL"
SWITCH_EMAIL_VAR = "FMX_SWITCH_WITH_EMAIL"

_SWITCH_APP = """\
import os

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
{import_line}

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["{url_var}"]
db = SQLAlchemy(app)
migrate = Migrate(app, db)


class Employee(db.Model):
    __tablename__ = "employee"
    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String(50))
    if os.environ.get("{email_var}"):
        email = sa.Column(sa.String(80))
"""


def write_switch_apps(directory: Path) -> None:
    """Write ``app_fm.py`` (Flask-Migrate) and ``app_ext.py`` (this package):
    the same models, on the database in ``SWITCH_URL_VAR``; with
    ``SWITCH_EMAIL_VAR`` set, ``Employee`` gains an ``email`` column."""
    for module, import_line in [
        ("app_fm", "from flask_migrate import Migrate"),
        ("app_ext", "from flask_migrate_ext import Migrate"),
    ]:
        source = _SWITCH_APP.format(
            import_line=import_line,
            url_var=SWITCH_URL_VAR,
            email_var=SWITCH_EMAIL_VAR,
        )
        (directory / f"{module}.py").write_text(source)


def run_switch_app(
    directory: Path, module: str, url: str, *args: str, email: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``flask --app <module> db <args>`` for :func:`write_switch_apps`."""
    env = {SWITCH_URL_VAR: url, **({SWITCH_EMAIL_VAR: "1"} if email else {})}
    return run_flask(directory, "--app", module, "db", *args, env=env, timeout=120)


#: An ``app.py`` on ``TEST_DATABASE_URL``, with ``TEST_MIGRATE_LOCK`` (on, off,
#: table) as ``MIGRATE_LOCK``: for runs racing or stopped in subprocesses.
LOCK_APP = """
import os
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_ext import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["TEST_DATABASE_URL"]
mode = os.environ.get("TEST_MIGRATE_LOCK", "on")
app.config["MIGRATE_LOCK"] = {"on": True, "off": False, "table": "table"}[mode]
db = SQLAlchemy(app)
Migrate(app, db)
"""


def flask_process(
    cwd: Path, url: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start ``flask <args>`` for :data:`LOCK_APP` on ``url``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    full_env.update({"TEST_DATABASE_URL": url, "FLASK_APP": "app", **(env or {})})
    return subprocess.Popen(
        [sys.executable, "-m", "flask", *args],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def flask_with_url(
    cwd: Path, url: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``flask <args>`` for :data:`LOCK_APP` on ``url``, in a subprocess."""
    process = flask_process(cwd, url, *args, env=env)
    stdout, stderr = process.communicate(timeout=90)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


# -- throwaway databases on the test servers -------------------------------

SERVER_URLS = {
    "postgresql": os.environ.get(
        "FLASK_MIGRATE_EXT_TEST_POSTGRESQL",
        "postgresql+psycopg://root@127.0.0.1:5432/test",
    ),
    "mariadb": os.environ.get(
        "FLASK_MIGRATE_EXT_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test"
    ),
}
REQUIRE_SERVERS = bool(os.environ.get("FLASK_MIGRATE_EXT_REQUIRE_SERVERS"))
BACKENDS = ["sqlite", "postgresql", "mariadb"]


def _server_unavailable(backend: str, reason: str) -> t.NoReturn:
    message = f"{backend} server unavailable: {reason}"
    if REQUIRE_SERVERS:
        pytest.fail(message + " (FLASK_MIGRATE_EXT_REQUIRE_SERVERS is set)")
    pytest.skip(message)


def require_program(name: str) -> str:
    """The path of the program ``name``; skip the test without it, or fail
    under ``FLASK_MIGRATE_EXT_REQUIRE_SERVERS`` (``.ci/run`` installs it)."""
    path = shutil.which(name)
    if path is None:
        message = f"the {name!r} program is not installed"
        if REQUIRE_SERVERS:
            pytest.fail(message + " (FLASK_MIGRATE_EXT_REQUIRE_SERVERS is set)")
        pytest.skip(message)
    return path


_admin_engines: dict[str, sa.Engine] = {}


def _admin_engine(backend: str) -> sa.Engine:
    if backend not in _admin_engines:
        _admin_engines[backend] = sa.create_engine(
            SERVER_URLS[backend], isolation_level="AUTOCOMMIT", pool_pre_ping=True
        )
    return _admin_engines[backend]


def create_database(backend: str, tmp_path: Path) -> str:
    """Create an empty database for one test and return its URL."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    name = f"fmx_{uuid.uuid4().hex[:12]}"
    try:
        with _admin_engine(backend).connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as e:
        _server_unavailable(backend, str(e.orig).splitlines()[0])
    url = sa.make_url(SERVER_URLS[backend]).set(database=name)
    return url.render_as_string(hide_password=False)


def drop_database(backend: str, url: str) -> None:
    if backend == "sqlite":
        return
    name = sa.make_url(url).database
    force = " WITH (FORCE)" if backend == "postgresql" else ""
    with _admin_engine(backend).connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}{force}"))


def on_terminal(
    cwd: Path,
    args: list[str],
    env: dict[str, str],
    answer: str | None = None,
    *,
    every_question: bool = False,
) -> tuple[int, str]:
    """Run ``flask <args>`` with a pseudo-terminal (``TERM=xterm``) as stdin,
    stdout and stderr; type ``answer`` at the first ``[y/N]`` question, or at
    each one with ``every_question``. Returns the exit code and the bytes
    the terminal received, decoded (answers are echoed back)."""
    leader, follower = pty.openpty()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", *args],
        cwd=cwd,
        env={**full_env, **env, "TERM": "xterm"},
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if answer is not None and seen.rstrip().endswith(b"[y/N]:"):
                os.write(leader, answer.encode() + b"\n")
                if not every_question:
                    answer = None
        elif process.poll() is not None:
            break
    code = process.wait(timeout=30)
    os.close(leader)
    return code, seen.decode(errors="replace")


def ledger_rows(url: str, columns: str = "revision, action, status") -> list[t.Any]:
    """``columns`` of each ledger row (a tuple each), oldest first."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(f"SELECT {columns} FROM flask_migrate_ext_log ORDER BY id")
            )
            return [tuple(row) for row in rows]
    finally:
        engine.dispose()
