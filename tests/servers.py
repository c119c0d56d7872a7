"""Throwaway database servers for tests that crash them, and a PgBouncer.

The shared servers (5432, 3306) serve every test: a test that stops a server
starts one of its own, on a free loopback port, with its data in a temporary
directory removed afterwards. Tests skip when the server programs are not
installed, unless ``FLASK_MIGRATE_EXT_REQUIRE_SERVERS`` is set.

:func:`pgbouncer` runs a PgBouncer in transaction pooling mode in front of
a PostgreSQL server, as production setups do.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import typing as t
from pathlib import Path

import sqlalchemy as sa

from helpers import _server_unavailable

#: Longest wait for a server to start or stop.
START_TIMEOUT = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    condition: t.Callable[[], bool], timeout: float, what: str, step: float = 0.05
) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(step)


def _accepts(url: str) -> bool:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


class Server:
    """One server; ``crash()`` kills it as a power cut would, ``start()``
    brings it back on the same data."""

    url: str

    def start(self) -> None:
        raise NotImplementedError

    def crash(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class PostgreSQLServer(Server):
    """``initdb`` + ``pg_ctl``, run as the ``postgres`` user (PostgreSQL
    refuses to run as root)."""

    def __init__(self, base: Path, bin_dir: Path) -> None:
        self.base = base
        self.bin = bin_dir
        self.data = base / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://root@127.0.0.1:{self.port}/postgres"
        self._run("initdb", "--no-sync", "-A", "trust", "-U", "root", "-D", self.data)

    def _run(self, program: str, *args: object) -> None:
        command = [os.fspath(self.bin / program), *(str(arg) for arg in args)]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(
            command, check=True, capture_output=True, timeout=START_TIMEOUT, cwd="/"
        )

    def _ctl(self, *args: object) -> None:
        self._run("pg_ctl", "-D", self.data, "-t", START_TIMEOUT, *args)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1"
            " -c shared_buffers=16MB"
        )
        self._ctl("-l", self.base / "log", "-w", "-o", options, "start")
        wait_until(lambda: _accepts(self.url), START_TIMEOUT, "PostgreSQL to start")

    def crash(self) -> None:
        """An immediate shutdown: no checkpoint, recovery from the WAL on start."""
        self._ctl("-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            if (self.data / "postmaster.pid").exists():
                self._ctl("-m", "immediate", "-w", "stop")


class MariaDBServer(Server):
    """``mariadb-install-db`` + ``mariadbd`` in the background."""

    def __init__(self, base: Path, daemon: str, install: str) -> None:
        self.base = base
        self.daemon = daemon
        self.data = base / "data"
        self.port = free_port()
        self.socket = base / "mysqld.sock"
        self.url = f"mysql+pymysql://root@127.0.0.1:{self.port}/test"
        self.process: subprocess.Popen[bytes] | None = None
        subprocess.run(
            [
                install,
                "--no-defaults",
                f"--datadir={self.data}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT * 2,
        )

    def start(self) -> None:
        log = open(self.base / "log", "ab")  # noqa: SIM115 - kept by the process
        self.process = subprocess.Popen(
            [
                self.daemon,
                "--no-defaults",
                f"--datadir={self.data}",
                f"--port={self.port}",
                f"--socket={self.socket}",
                f"--pid-file={self.base / 'mysqld.pid'}",
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=16M",
            ],
            stdout=log,
            stderr=log,
        )
        log.close()
        admin = sa.make_url(self.url).set(database="mysql")
        wait_until(
            lambda: _accepts(admin.render_as_string(hide_password=False)),
            START_TIMEOUT,
            "MariaDB to start",
        )
        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("CREATE DATABASE IF NOT EXISTS test"))
        finally:
            engine.dispose()

    def crash(self) -> None:
        """SIGKILL: InnoDB recovers from its redo log on start."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=START_TIMEOUT)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=START_TIMEOUT)
            self.process = None


def _postgresql_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def _base_dir(owner: str | None) -> Path:
    # Not under pytest's tmp_path: its parent is private to root, and the
    # postgres user must reach its data directory.
    base = Path(tempfile.mkdtemp(prefix="fmx-server-"))
    if owner is not None and os.geteuid() == 0:
        shutil.chown(base, owner, owner)
    return base


@contextlib.contextmanager
def throwaway_server(backend: str) -> t.Iterator[Server]:
    """Start a server of ``backend`` for one test; always stopped and removed."""
    server: Server | None = None
    owner = "postgres" if backend == "postgresql" else None
    if backend == "postgresql":
        bin_dir = _postgresql_bin()
        if bin_dir is None:
            _server_unavailable(backend, "initdb/pg_ctl are not installed")
    else:
        daemon = shutil.which("mariadbd") or (
            "/usr/sbin/mariadbd" if os.path.exists("/usr/sbin/mariadbd") else None
        )
        install = shutil.which("mariadb-install-db")
        if daemon is None or install is None:
            _server_unavailable(backend, "mariadbd/mariadb-install-db not installed")
    base = _base_dir(owner)
    try:
        if backend == "postgresql":
            assert bin_dir is not None
            server = PostgreSQLServer(base, bin_dir)
        else:
            assert daemon is not None and install is not None
            server = MariaDBServer(base, daemon, install)
        server.start()
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


class PgBouncer:
    """A PgBouncer in transaction pooling mode in front of ``upstream``
    (a PostgreSQL URL with trust authentication), on a free loopback port.

    A small pool, so that clients really share server connections.
    """

    def __init__(self, base: Path, program: str, upstream: str, pool_size: int) -> None:
        self.base = base
        self.port = free_port()
        self.upstream = sa.make_url(upstream)
        self.config = base / "pgbouncer.ini"
        self.log = base / "pgbouncer.log"
        self.config.write_text(
            "[databases]\n"
            f"* = host={self.upstream.host or '127.0.0.1'}"
            f" port={self.upstream.port or 5432} user={self.upstream.username}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            f"unix_socket_dir = {base}\n"
            "auth_type = any\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\n"
            "max_client_conn = 200\n"
            "server_check_delay = 0\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.log}\n"
            f"pidfile = {base / 'pgbouncer.pid'}\n"
        )
        command = [program, "-q", os.fspath(self.config)]
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            command[1:1] = ["-u", "postgres"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/"
        )

    def url(self, database: str | None = None) -> str:
        """``upstream``'s URL (or another database's) through the pooler."""
        url = self.upstream.set(host="127.0.0.1", port=self.port)
        if database is not None:
            url = url.set(database=database)
        return url.render_as_string(hide_password=False)

    def unix_url(self, database: str) -> str:
        """``database`` through the pooler's Unix socket."""
        url = self.upstream.set(host=None, port=None, database=database)
        url = url.update_query_dict(
            {"host": os.fspath(self.base), "port": str(self.port)}
        )
        return url.render_as_string(hide_password=False)

    def wait_started(self) -> None:
        def up() -> bool:
            if self.process.poll() is not None:
                assert self.process.stderr is not None
                raise RuntimeError(
                    f"pgbouncer exited: {self.process.stderr.read().decode()}"
                    f" {self.log.read_text() if self.log.exists() else ''}"
                )
            return _accepts(self.url())

        wait_until(up, START_TIMEOUT, "PgBouncer to start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=START_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=START_TIMEOUT)
        if self.process.stderr is not None:
            self.process.stderr.close()


@contextlib.contextmanager
def pgbouncer(upstream: str, pool_size: int = 3) -> t.Iterator[PgBouncer]:
    """Run a PgBouncer (transaction pooling) in front of ``upstream``; stopped
    and removed afterwards. Skips when ``pgbouncer`` is not installed, unless
    ``FLASK_MIGRATE_EXT_REQUIRE_SERVERS`` is set (``.ci/run`` installs it)."""
    program = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
    )
    if program is None:
        _server_unavailable("pgbouncer", "the pgbouncer program is not installed")
    base = _base_dir("postgres")
    bouncer: PgBouncer | None = None
    try:
        bouncer = PgBouncer(base, program, upstream, pool_size)
        bouncer.wait_started()
        yield bouncer
    finally:
        if bouncer is not None:
            bouncer.stop()
        shutil.rmtree(base, ignore_errors=True)
