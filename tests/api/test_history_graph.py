"""``api.graph``: the revision graph as data (``flask db graph`` draws it)."""

from __future__ import annotations

from pathlib import Path

import pytest

import flask_migrate_ext
from flask_migrate_ext import api
from flask_migrate_ext import HistoryGraph
from flask_migrate_ext.cli.drawing import node_id
from helpers import AppFactory
from helpers import invoke
from helpers import ok
from helpers import write_revision


def test_graph_returns_revisions_labels_dependencies_and_databases(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    versions = tmp_path / "migrations" / "versions"
    write_revision(versions, "a", None, "pass", "pass")
    write_revision(versions, "b", "a", "pass", "pass", branch_labels="side")
    write_revision(versions, "c", "a", "pass", "pass", depends_on="side")
    write_revision(versions, "d", "b", "pass", "pass")
    ok(invoke(app, "upgrade", "c"))

    with app.app_context():
        scripts_only = api.graph(current=False)
        graph = flask_migrate_ext.graph()

    assert isinstance(graph, HistoryGraph)
    assert scripts_only.databases is None
    assert [rev.id for rev in graph.revisions][-1] == "a"  # newest first
    assert sorted(graph.edges()) == [("a", "b"), ("a", "c"), ("b", "d")]
    # The label where the file declares it; Alembic hands it to "d" too.
    assert graph.labels == {"b": ("side",)}
    assert next(r for r in graph.revisions if r.id == "d").branch_labels == ("side",)
    # depends_on = "side": the revision that declares the label.
    assert graph.dependencies == {"c": ("b",)}
    assert graph.dependency_edges() == [("b", "c")]
    assert graph.databases is not None
    (state,) = graph.databases
    # c needs b, so upgrading to c applied b: the database is at both.
    assert (state.name, sorted(state.ids)) == ("", ["b", "c"])
    assert graph.databases_at("c") == graph.databases_at("b") == (state,)
    assert graph.databases_at("a") == graph.databases_at("d") == ()


def test_graph_of_a_straight_history(
    make_app: AppFactory, sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    ok(invoke(app, "init"))
    versions = tmp_path / "migrations" / "versions"
    write_revision(versions, "a", None, "pass", "pass")
    write_revision(versions, "b", "a", "pass", "pass")
    with app.app_context():
        api.history()  # fills the cache
        graph = api.graph(current=False)
    assert graph.edges() == [("a", "b")]
    assert (graph.labels, graph.dependencies) == ({}, {})


@pytest.mark.parametrize(
    ("first", "second"),
    [("a_b", "a.b"), ("a_2e_b", "a.b"), ("ab", "a_b"), ("é", "_e9_")],
)
def test_node_ids_never_collide(first: str, second: str) -> None:
    assert node_id(first) != node_id(second)
    for made in (node_id(first), node_id(second)):
        assert made.replace("_", "").isalnum() and made.isascii()
