"""The documentation builds with Sphinx, warnings treated as errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import click

from flask_migrate_ext.cli import db
from flask_migrate_ext.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent


def test_docs_build_without_warnings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [os.fspath(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            os.fspath(tmp_path / "doctrees"),
            os.fspath(ROOT / "docs"),
            os.fspath(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    page = (tmp_path / "html" / "commands.html").read_text(encoding="utf-8")
    # The command reference is generated from the click group: every command
    # and option is on the page.
    for name, command in db.commands.items():
        assert f'id="flask-db-{name}"' in page
        options = [p for p in command.params if isinstance(p, click.Option)]
        for param in options:
            assert (
                f'id="cmdoption-flask-db-{name}-{param.opts[-1].lstrip("-")}"' in page
            )
    # The configuration page's table comes from the settings themselves.
    configuration = (tmp_path / "html" / "configuration.html").read_text("utf-8")
    assert "settings-table" not in configuration
    for setting in SETTINGS:
        assert f'<span class="pre">{setting.key}</span>' in configuration
    # The graph page shows the example app's graph, drawn by the build.
    graph = (tmp_path / "html" / "graph.html").read_text("utf-8")
    assert "r_de60ec441599 --&gt; r_920f0073fc10" in graph
    assert ("example-graph.svg" in graph) == (shutil.which("dot") is not None)
