"""``karena report``: the latest record per (task, solution, baseline) from the store, as a
terminal table, JSON, or a self-contained HTML page with plots (speedup with its CI per task,
and % of roofline)."""

from __future__ import annotations

import argparse
import base64
import html
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kernelarena import settings
from kernelarena.report.table import fmt, table
from kernelarena.store.sqlite import Store


def latest_bench_rows(store: Store, task: str | None = None) -> list[dict[str, Any]]:
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in store.records(kind="bench", task=task):
        latest[(r["task"], r["solution"] or "", r["baseline"] or "")] = r  # records come oldest first
    rows = []
    for (task_name, solution, baseline), r in sorted(latest.items()):
        res = r["payload"]["result"]
        cand, base = res.get("candidate") or {}, res.get("baseline") or {}
        rows.append(
            {
                "task": task_name,
                "solution": Path(solution).name,
                "baseline": baseline,
                "verdict": r["verdict"],
                "speedup": res.get("speedup"),
                "speedup_ci": res.get("speedup_ci"),
                "candidate_ms": cand.get("median_ms"),
                "baseline_ms": base.get("median_ms"),
                "percent_of_roofline": res.get("percent_of_roofline"),
                "cache": cand.get("cache"),
                "mode": cand.get("mode"),
                "device": r["device"],
                "reasons": (res.get("verdict") or {}).get("reasons", []) + res.get("reasons", []),
            }
        )
    return rows


def _plot_png(rows: list[dict[str, Any]]) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ok = [r for r in rows if r["speedup"]]
    if not ok:
        return None
    fig, axes = plt.subplots(
        1, 2, figsize=(13, max(3.0, 0.32 * len(ok) + 1)), gridspec_kw={"width_ratios": [3, 2]}
    )
    names = [f"{r['task']} vs {r['baseline']}" for r in ok]
    sp = [r["speedup"] for r in ok]
    lo = [r["speedup"] - (r["speedup_ci"] or [r["speedup"]] * 2)[0] for r in ok]
    hi = [(r["speedup_ci"] or [r["speedup"]] * 2)[1] - r["speedup"] for r in ok]
    colors = ["tab:green" if s >= 1 else "tab:red" for s in sp]
    axes[0].barh(names, sp, xerr=[lo, hi], color=colors, capsize=2)
    axes[0].axvline(1.0, color="black", lw=0.8)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("speedup (95% CI)")
    roof = [(n, r["percent_of_roofline"]) for n, r in zip(names, ok, strict=True) if r["percent_of_roofline"]]
    if roof:
        axes[1].barh([n for n, _ in roof], [p for _, p in roof], color="tab:blue")
        axes[1].axvline(100.0, color="black", lw=0.8)
        axes[1].set_xlabel("% of roofline (candidate)")
    else:
        axes[1].set_axis_off()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def write_html(rows: list[dict[str, Any]], path: Path) -> None:
    png = _plot_png(rows)
    head = ["task", "solution", "baseline", "verdict", "speedup", "95% CI", "cand ms", "base ms", "% roofline",
            "cache/mode", "first reason"]  # fmt: skip
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(c))}</td>"
            for c in (
                r["task"],
                r["solution"],
                r["baseline"],
                r["verdict"],
                fmt(r["speedup"], ".3f"),
                f"[{r['speedup_ci'][0]:.3f}, {r['speedup_ci'][1]:.3f}]" if r["speedup_ci"] else "-",
                fmt(r["candidate_ms"], ".4g"),
                fmt(r["baseline_ms"], ".4g"),
                fmt(r["percent_of_roofline"], ".0f"),
                f"{r['cache']}/{r['mode']}",
                (r["reasons"] or [""])[0],
            )
        )
        + "</tr>"
        for r in rows
    )
    img = (
        f'<img alt="speedups" src="data:image/png;base64,{png}">'
        if png
        else "<p>(no timed records to plot)</p>"
    )
    path.write_text(
        "<!doctype html><meta charset=utf-8><title>kernelarena report</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}th{background:#eee}</style>"
        f"<h1>kernelarena report</h1><p>{len(rows)} benchmark record(s).</p>{img}"
        f"<table><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>{body}</table>"
    )


def run_report(
    args: argparse.Namespace, emit: Callable[[argparse.Namespace, dict[str, Any], str], None]
) -> int:
    with Store(args.db or settings.db_path()) as store:
        rows = latest_bench_rows(store, args.task)
    if args.html:
        write_html(rows, args.html)
    text = table(
        ["task", "solution", "baseline", "verdict", "speedup", "cand ms", "base ms", "%roof"],
        [
            [
                r["task"],
                r["solution"],
                r["baseline"],
                r["verdict"],
                fmt(r["speedup"], ".2f"),
                fmt(r["candidate_ms"], ".4g"),
                fmt(r["baseline_ms"], ".4g"),
                fmt(r["percent_of_roofline"], ".0f"),
            ]
            for r in rows
        ],
        right=(4, 5, 6, 7),
    )
    if args.html:
        text += f"\nwrote {args.html}"
    emit(args, {"records": rows, "html": str(args.html) if args.html else None}, text)
    return 0
