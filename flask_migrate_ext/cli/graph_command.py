"""``flask db graph``: draw the revision graph as Mermaid, dot or SVG.

Added to the ``db`` group by :mod:`.commands`; like it, this module must not
import Alembic (``flask --help`` imports it).
"""

from __future__ import annotations

import click

from ..errors import DatabaseUnreachableError
from ..errors import MigrateError
from . import output
from .boundary import migrate_command
from .drawing import FORMATS
from .drawing import render
from .options import bind_args
from .options import bind_option
from .options import directory_arg
from .options import directory_option
from .options import load_api


@migrate_command("graph")
@directory_option
@bind_option
@click.option(
    "--format",
    "format_",
    type=click.Choice(FORMATS),
    default="mermaid",
    show_default=True,
    help="Mermaid or dot text, or SVG drawn by Graphviz's 'dot' program.",
)
@click.option(
    "-o",
    "--output",
    "output_path",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    help="Write the graph to this file instead of standard output.",
)
@click.option(
    "--no-current",
    is_flag=True,
    help="Don't read the databases: draw the scripts alone.",
)
def graph_command(
    directory: str | None,
    bind: tuple[str, ...],
    format_: str,
    output_path: str,
    no_current: bool,
) -> None:
    """Draw the revision graph, marking each database's current revision."""
    try:
        graph = load_api().graph(
            directory_arg(directory), current=not no_current, **bind_args(bind)
        )
    except DatabaseUnreachableError as e:
        raise DatabaseUnreachableError(
            f"{str(e).rstrip('.')}. To draw the graph without reading the"
            " databases, add --no-current."
        ) from e
    text = render(graph, format_)
    if not graph.revisions:
        click.echo("No revisions yet: the graph is empty.", err=True)
    _write(text, output_path)


def _write(text: str, path: str) -> None:
    if path == "-":
        output.echo(text)
        return
    try:
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
    except OSError as e:
        raise MigrateError(f"Cannot write the graph to {path}: {e.strerror}") from e
    click.echo(f"Wrote the graph to {path}.", err=True)
