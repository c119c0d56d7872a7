"""The benchmark's report: ratios and targets per case, the markdown table, and
the per-revision cost of W6 (least-squares slope over the sizes)."""

from __future__ import annotations

import typing as t

from measure import Case

#: Variants shown in the table's own columns; others are named in the title.
MAIN_VARIANTS = ("ext", "fm", "none", "floor")

#: W6: the cost per revision is "flat" when the slope between the two largest
#: sizes is at most this many times the slope between the two smallest.
FLAT_LIMIT = 1.25


def evaluate(case: Case) -> dict[str, t.Any]:
    s = {v.name: v.summary() for v in case.variants}
    row: dict[str, t.Any] = {
        "key": case.key,
        "workload": case.workload,
        "title": case.title,
        "backend": case.backend,
        "variants": s,
        **({"info": case.info} if case.info else {}),
    }
    if "ext" in s and "fm" in s:
        e, f = s["ext"], s["fm"]
        row["ext_fm"] = {
            "median": e["median"] / f["median"],
            "min": e["min"] / f["min"],
            "cpu_median": e["cpu_median"] / f["cpu_median"],
            "rss": e["rss_mb_median"] / f["rss_mb_median"],
        }
    if "none" in s and "ext" in s:
        floor = s["none"]["median"]
        row["floor_median"] = floor
        row["ext_floor"] = s["ext"]["median"] / floor
        row["ext_floor_min"] = s["ext"]["min"] / s["none"]["min"]
        if "fm" in s:
            row["fm_floor"] = s["fm"]["median"] / floor
            # The lowest ext/FM any tool could reach: the app's start-up
            # alone (`flask --help`) against Flask-Migrate's whole command.
            row["floor_fm"] = floor / s["fm"]["median"]
    checks = []
    for target in case.targets:
        if target.kind == "fm":
            value, label = row["ext_fm"]["median"], "ext/FM"
        elif target.kind == "floor":
            value, label = row.get("ext_floor"), "ext/floor"
        elif target.kind == "rss":
            value, label = row["ext_fm"]["rss"], "RSS ext/FM"
        elif target.kind == "ratio":
            value = s[target.num]["median"] / s[target.den]["median"]
            label = f"{target.num}/{target.den}"
            if target.per is not None:
                num, den = target.per
                value /= s[num]["median"] / s[den]["median"]
        else:  # the extension's own lines in app.py: import + Migrate(app, db)
            value = s["ext"]["ext_lines_median"] * 1000
            label = "extension import + init ms"
            row["import_ext_minus_none_ms"] = (
                s["ext"]["inner_median"] - s["none"]["inner_median"]
            ) * 1000
        checks.append(
            {
                "label": target.label or label,
                "limit": target.limit,
                "value": value,
                "met": None
                if value is None or target.limit is None
                else value <= target.limit,
            }
        )
    row["targets"] = checks
    return row


# -- W6: cost per revision ---------------------------------------------------


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ``ys`` over ``xs``."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def scaling(rows: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """Per backend, command and tool: medians by size and seconds per revision.

    ``slope``: least-squares fit over all sizes; ``low``: between the two
    smallest sizes; ``high``: between the two largest; ``flat``: high <=
    FLAT_LIMIT x low (the per-revision cost does not grow with the history).
    """
    groups: dict[tuple[str, str], list[dict[str, t.Any]]] = {}
    for row in rows:
        info = row.get("info", {})
        if row["workload"] == "W6" and "size" in info:
            groups.setdefault((row["backend"], info["command"]), []).append(row)
    out = []
    for (backend, command), group in groups.items():
        group.sort(key=lambda row: row["info"]["size"])
        sizes = [float(row["info"]["size"]) for row in group]
        if len(sizes) < 2:
            continue
        for tool in ("ext", "fm"):
            medians = [row["variants"][tool]["median"] for row in group]
            entry: dict[str, t.Any] = {
                "backend": backend,
                "command": command,
                "tool": tool,
                "sizes": [int(x) for x in sizes],
                "medians": medians,
                "slope": _slope(sizes, medians),
                "low": (medians[1] - medians[0]) / (sizes[1] - sizes[0]),
                "high": (medians[-1] - medians[-2]) / (sizes[-1] - sizes[-2]),
            }
            if len(sizes) >= 3 and entry["low"] > 0:
                entry["high_low"] = entry["high"] / entry["low"]
                entry["flat"] = entry["high_low"] <= FLAT_LIMIT
            out.append(entry)
    return out


# -- markdown ----------------------------------------------------------------


def _f(x: float | None, fmt: str = ".2f") -> str:
    return "" if x is None else format(x, fmt)


def _title(row: dict[str, t.Any]) -> str:
    s = row["variants"]
    title: str = row["title"]
    inner = {k: v["inner_median"] for k, v in s.items() if "inner_median" in v}
    ext_lines = {
        k: v["ext_lines_median"] for k, v in s.items() if v.get("ext_lines_median")
    }
    if ext_lines:
        title += (
            " (extension lines: "
            + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in ext_lines.items())
            + ")"
        )
    if inner:
        title += (
            " (in-process: "
            + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in inner.items())
            + ")"
        )
    others = {k: v for k, v in s.items() if k not in MAIN_VARIANTS}
    if others:
        title += (
            " (also: "
            + ", ".join(
                f"{k} {v['median']:.3f} s, {v['rss_mb_median']:.0f} MB"
                for k, v in others.items()
            )
            + ")"
        )
    if row["workload"] == "F":
        title = f"floor: {title}"
    return title


def _target(c: dict[str, t.Any]) -> str:
    value = _f(c["value"], ".3f" if "RSS" in c["label"] else ".2f")
    if c["limit"] is None:
        return f"{c['label']} {value} (info)"
    return f"{c['label']} {value} <= {c['limit']:g} " + ("ok" if c["met"] else "MISS")


def _scaling_table(entries: list[dict[str, t.Any]]) -> list[str]:
    lines = [
        "",
        "Cost per revision (W6), ms per revision: the least-squares slope of the"
        " median wall time over the sizes; low = between the two smallest sizes,"
        " high = between the two largest; flat = high <= "
        f"{FLAT_LIMIT:g} x low.",
        "",
        "| backend | command | tool | medians (s) by size | slope | low | high"
        " | high/low | flat |",
        "|" + " --- |" * 9,
    ]
    for e in entries:
        medians = ", ".join(
            f"{n}: {m:.2f}" for n, m in zip(e["sizes"], e["medians"], strict=True)
        )
        flat = e.get("flat")
        lines.append(
            f"| {e['backend']} | {e['command']} | {e['tool']} | {medians}"
            f" | {e['slope'] * 1000:.2f} | {e['low'] * 1000:.2f}"
            f" | {e['high'] * 1000:.2f} | {_f(e.get('high_low'))}"
            f" | {'' if flat is None else ('yes' if flat else 'no')} |"
        )
    return lines


def markdown(
    meta: dict[str, t.Any],
    rows: list[dict[str, t.Any]],
    slopes: list[dict[str, t.Any]] | None = None,
) -> str:
    lines = [
        f"Run {meta['started']} on {meta['machine']}; Python {meta['python']};"
        f" n={meta['repeat']} (fast) / {meta['repeat_slow']} (slow)"
        f"{' after one warm-up' if meta['warmup'] else ', no warm-up'};"
        f" sizes {', '.join(f'{k}={v}' for k, v in meta['sizes'].items())};"
        f" load average {meta['loadavg_before']} before,"
        f" {meta['loadavg_after']} after.",
        "",
        "Seconds, wall clock of the whole process (of the group, for N processes"
        " at once). Ratios of medians unless marked.",
        "",
        "| workload | case | backend | ext median | ext min | FM median | FM min"
        " | ext/FM median | ext/FM min | ext/FM CPU | floor median"
        " | ext/floor median (min) | floor/FM | RSS MB ext / FM"
        " | targets |",
        "|" + " --- |" * 15,
    ]
    for row in rows:
        s = row["variants"]
        first = s.get("ext") or s.get("floor") or s.get("none")
        fm = s.get("fm", {})
        r = row.get("ext_fm", {})
        rss = _f(first["rss_mb_median"], ".0f")
        if fm:
            rss += f" / {fm['rss_mb_median']:.0f}"
        floor_ratio = ""
        if "ext_floor" in row:
            floor_ratio = f"{row['ext_floor']:.2f} ({row['ext_floor_min']:.2f})"
        targets = "; ".join(_target(c) for c in row["targets"])
        lines.append(
            f"| {row['workload']} | {_title(row)} | {row['backend']}"
            f" | {first['median']:.3f} | {first['min']:.3f}"
            f" | {_f(fm.get('median'), '.3f')} | {_f(fm.get('min'), '.3f')}"
            f" | {_f(r.get('median'))} | {_f(r.get('min'))} | {_f(r.get('cpu_median'))}"
            f" | {_f(row.get('floor_median'), '.3f')} | {floor_ratio}"
            f" | {_f(row.get('floor_fm'))} | {rss}"
            f" | {targets} |"
        )
    met = sum(1 for row in rows for c in row["targets"] if c["met"])
    total = sum(1 for row in rows for c in row["targets"] if c["limit"] is not None)
    lines += ["", f"Targets met: {met} of {total}."]
    if slopes:
        lines += _scaling_table(slopes)
    for note in meta.get("skipped", []):
        lines += ["", f"Skipped: {note}"]
    return "\n".join(lines) + "\n"
