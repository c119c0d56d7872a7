"""Revisions as plain data: what Alembic knows of a revision file, without Alembic.

:class:`Revision` is built from an Alembic :class:`~alembic.script.Script`
(:func:`from_script`) or from what the revision cache recorded of a file in a
straight history (:func:`from_declared`), so the fast path and Alembic give
the same answer. Importing this module does not import Alembic.
"""

from __future__ import annotations

import dataclasses
import typing as t
from pathlib import Path

if t.TYPE_CHECKING:
    from alembic.script import Script


@dataclasses.dataclass(frozen=True)
class Revision:
    """One revision of the migration history, as a script file declares it
    and as the revision graph places it.

    .. versionadded:: 0.1
    """

    #: The revision id (``revision = ...`` in the file).
    id: str
    #: The revisions it revises (``down_revision``); empty for a base, two
    #: or more for a merge point.
    down_revisions: tuple[str, ...]
    #: Its branch labels, including those inherited from its ancestors.
    branch_labels: tuple[str, ...]
    #: The revisions it also depends on (``depends_on``), as written.
    depends_on: tuple[str, ...]
    #: The first line of its docstring; ``""`` without one.
    message: str
    #: Its whole docstring, stripped; ``""`` without one.
    doc: str
    #: The script file's path.
    path: str
    #: No revision revises it.
    is_head: bool
    #: It revises nothing.
    is_base: bool
    #: More than one revision revises it.
    is_branch_point: bool
    #: It revises more than one revision.
    is_merge_point: bool
    #: The revisions that revise it (Alembic's order).
    children: tuple[str, ...] = ()
    #: Another revision depends on it (``depends_on``); Alembic calls such a
    #: head an "effective head".
    depended_on: bool = False
    #: Whether the database is at this revision; ``None`` when the database
    #: was not asked (``history`` without ``indicate_current``).
    is_current: bool | None = None

    @property
    def summary(self) -> str:
        """The docstring's first paragraph, which Alembic's listings show."""
        return self.doc.split("\n\n")[0]


@dataclasses.dataclass(frozen=True)
class BranchPoint(Revision):
    """A revision that more than one revision revises, with those revisions.

    .. versionadded:: 0.1
    """

    #: The revisions it branches into, in :attr:`children`'s order.
    branches: tuple[Revision, ...] = ()


def first_line(doc: str) -> str:
    """The first line of a docstring (its message)."""
    return doc.split("\n", 1)[0].strip()


def from_script(script: Script, is_current: bool | None = None) -> Revision:
    """The :class:`Revision` for an Alembic script."""
    doc = script.longdoc
    return Revision(
        id=script.revision,
        down_revisions=tuple(script._versioned_down_revisions),
        branch_labels=tuple(script.branch_labels),
        depends_on=_tupled(script.dependencies),
        message=first_line(doc),
        doc=doc,
        path=script.path,
        is_head=script.is_head,
        is_base=script.is_base,
        is_branch_point=script.is_branch_point,
        is_merge_point=script.is_merge_point,
        children=tuple(script.nextrev),
        depended_on=bool(script._all_nextrev - script.nextrev),
        is_current=is_current,
    )


def declared_labels(script: Script) -> tuple[str, ...]:
    """The branch labels ``script``'s file declares; :attr:`Revision.branch_labels`
    also holds those it inherits from other revisions."""
    return tuple(script._orig_branch_labels or ())


def resolved_dependencies(script: Script) -> tuple[str, ...]:
    """``script``'s ``depends_on`` as revision ids (branch labels resolved)."""
    return tuple(script._resolved_dependencies)


def from_declared(
    line: t.Sequence[tuple[Path, dict[str, t.Any]]],
) -> list[Revision]:
    """The revisions of a straight history, newest first, from what each
    file declared (``down_revision`` already a single id or ``None``)."""
    revisions = []
    for position, (path, declared) in enumerate(line):
        doc = (declared["doc"] or "").strip()
        down = declared["down_revision"]
        newer = line[position - 1][1]["revision"] if position else None
        revisions.append(
            Revision(
                id=declared["revision"],
                down_revisions=(down,) if down else (),
                branch_labels=(),
                depends_on=(),
                message=first_line(doc),
                doc=doc,
                path=str(path),
                is_head=position == 0,
                is_base=down is None,
                is_branch_point=False,
                is_merge_point=False,
                children=(newer,) if newer else (),
            )
        )
    return revisions


class GraphUnclear(ValueError):
    """The declarations do not form a graph Alembic would accept as it is
    (a duplicated id, a parent that does not exist, a loop): only Alembic
    can say what is wrong."""


#: Characters Alembic refuses in revision ids.
_ILLEGAL_ID_CHARS = frozenset("@-+:")


def revisions_from_declared(
    found: t.Sequence[tuple[Path, dict[str, t.Any]]],
) -> dict[str, Revision]:
    """Every revision of any history (branches, merges, labels,
    ``depends_on``), keyed by id in file order, from what the revision cache
    recorded of each file: what :func:`from_script` reports for Alembic's
    scripts, without Alembic.

    ``branch_labels`` include inherited labels, worked out as Alembic does
    (along each labelled revision's descendants, and down its own line to
    the nearest branch or merge point).

    :raises GraphUnclear: Anything Alembic would warn about or refuse.
    """
    nodes: dict[str, _Node] = {}
    for path, declared in found:
        node = _Node(path, declared)
        if node.id in nodes:
            raise GraphUnclear(f"duplicate revision {node.id}")
        nodes[node.id] = node
    labels: dict[str, str] = {}
    for node in nodes.values():
        for label in node.own_labels:
            if label in labels or label in nodes:
                raise GraphUnclear(f"label {label} used twice")
            labels[label] = node.id
    for node in nodes.values():
        for parent in node.all_down(labels):
            if parent not in nodes:
                raise GraphUnclear(f"{parent} referenced from {node.id} is missing")
            nodes[parent].add_child(node)
    _check_acyclic(nodes, labels)
    for node in nodes.values():
        if node.own_labels:
            _spread_labels(nodes, node)
    return {node.id: node.revision() for node in nodes.values()}


class _Node:
    """A revision while the graph is built (Alembic's ``Revision`` state)."""

    def __init__(self, path: Path, declared: dict[str, t.Any]) -> None:
        self.path = path
        self.id: str = declared["revision"]
        self.doc = (declared["doc"] or "").strip()
        self.down = _ids(declared["down_revision"])
        self.depends_on = _ids(declared["depends_on"])
        self.own_labels = _ids(declared["branch_labels"])
        self.labels = set(self.own_labels)
        # Frozensets grown one id at a time, as Alembic grows them, so their
        # order (which ``children`` shows) is Alembic's in this process.
        self.children: frozenset[str] = frozenset()
        self.all_children: frozenset[str] = frozenset()
        if (
            not self.id
            or _ILLEGAL_ID_CHARS & set(self.id)
            or self.id in self.down
            or self.id in self.depends_on
        ):
            raise GraphUnclear(f"revision {self.id!r} cannot be read as declared")

    def all_down(self, labels: t.Mapping[str, str]) -> tuple[str, ...]:
        resolved = tuple(labels.get(dep, dep) for dep in self.depends_on)
        return tuple(dict.fromkeys((*self.down, *resolved)))

    def add_child(self, child: _Node) -> None:
        self.all_children = self.all_children.union([child.id])
        if self.id in child.down:
            self.children = self.children.union([child.id])

    def revision(self) -> Revision:
        return Revision(
            id=self.id,
            down_revisions=self.down,
            branch_labels=tuple(self.labels),
            depends_on=self.depends_on,
            message=first_line(self.doc),
            doc=self.doc,
            path=str(self.path),
            is_head=not self.children,
            is_base=not self.down,
            is_branch_point=len(self.children) > 1,
            is_merge_point=len(self.down) > 1,
            children=tuple(self.children),
            depended_on=bool(self.all_children - self.children),
        )


def _ids(value: t.Any) -> tuple[str, ...]:
    """A declared id or list of ids as Alembic reads it (``util.to_tuple``);
    an empty id is left to Alembic to report."""
    ids = () if value is None else (value,) if isinstance(value, str) else value
    if not all(isinstance(i, str) and i for i in ids):
        raise GraphUnclear(f"unusable ids {value!r}")
    return tuple(ids)


def _check_acyclic(nodes: t.Mapping[str, _Node], labels: t.Mapping[str, str]) -> None:
    waiting = {node.id: len(node.all_down(labels)) for node in nodes.values()}
    ready = [rid for rid, count in waiting.items() if not count]
    placed = 0
    while ready:
        current = nodes[ready.pop()]
        placed += 1
        for child in current.all_children:
            waiting[child] -= 1
            if not waiting[child]:
                ready.append(child)
    if placed != len(nodes):
        raise GraphUnclear("a loop")


def _spread_labels(nodes: t.Mapping[str, _Node], labelled: _Node) -> None:
    """Alembic's ``RevisionMap._add_branches`` for one labelled revision:
    every descendant gets its labels, then the line below the last
    descendant visited, down to a branch or merge point."""
    seen: set[str] = set()
    todo = [labelled]
    node = labelled
    while todo:
        node = todo.pop()
        if node.id in seen:
            continue
        seen.add(node.id)
        todo.extend(nodes[child] for child in node.children)
        node.labels.update(labelled.labels)
    parent: _Node | None = node
    while (
        parent is not None and len(parent.all_children) <= 1 and len(parent.down) <= 1
    ):
        parent.labels.update(labelled.labels)
        parent = nodes[parent.down[0]] if parent.down else None


def ancestry(revisions: t.Mapping[str, Revision], tops: t.Iterable[str]) -> set[str]:
    """``tops`` and every revision they revise or depend on, transitively:
    what a version table holding ``tops`` has applied.

    Ids missing from ``revisions`` (a version table naming a revision no
    script defines) are left out; ``depends_on`` entries that are branch
    labels are resolved through the labels' revisions.
    """
    by_label: dict[str, str] = {}
    for revision in revisions.values():
        for label in revision.branch_labels:
            by_label.setdefault(label, revision.id)
    seen: set[str] = set()
    stack = [top for top in tops if top in revisions]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        revision = revisions[current]
        for parent in (*revision.down_revisions, *revision.depends_on):
            parent = parent if parent in revisions else by_label.get(parent, "")
            if parent and parent not in seen:
                stack.append(parent)
    return seen


def _tupled(value: str | t.Iterable[str] | None) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)
