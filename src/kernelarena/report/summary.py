"""``karena report``: the latest record per (task, solution, baseline) from the store, as a
terminal table, JSON, or a self-contained HTML page with interactive charts (:mod:`.html`).

The JSON (``--json``) and the page are built from one dict (:func:`.data.report_data`), so the
page's numbers are the JSON's."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from kernelarena import settings
from kernelarena.report.data import report_data
from kernelarena.report.html import write_html
from kernelarena.report.table import fmt, table


def run_report(
    args: argparse.Namespace, emit: Callable[[argparse.Namespace, dict[str, Any], str], None]
) -> int:
    data = report_data(args.db or settings.db_path(), args.task)
    rows = data["records"]
    if args.html:
        write_html(data, args.html)
    text = table(
        ["task", "solution", "baseline", "machine", "verdict", "speedup", "cand ms", "base ms", "%roof"],
        [
            [
                r["task"],
                r["solution"],
                r["baseline"],
                r["machine"],
                r["verdict"],
                fmt(r["speedup"], ".2f"),
                fmt(r["candidate_ms"], ".4g"),
                fmt(r["baseline_ms"], ".4g"),
                fmt(r["percent_of_roofline"], ".0f"),
            ]
            for r in rows
        ],
        right=(5, 6, 7, 8),
    )
    if data["agent_runs"]:
        agent_rows = [
            [a["run"], a["task"], str(a["round"]), fmt(a["best_speedup"], ".2f"), f"{a['correct_rate']:.0%}"]
            for a in data["agent_runs"]
        ]
        text += "\n\nagent runs (best verified speedup and correct rate up to each round)\n"
        text += table(["run", "task", "round", "best", "correct"], agent_rows, right=(2, 3, 4))
    text += "\n" + "\n".join(data["notes"])
    if args.html:
        text += f"\nwrote {args.html}"
    emit(args, {**data, "html": str(args.html) if args.html else None}, text)
    return 0
