"""Plain-text tables for the terminal (no dependencies; aligned columns, a rule under the header)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def fmt(value: Any, spec: str = ".3g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> str:
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if i in right else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    return "\n".join([line(list(headers)), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def suite_table(summary: dict[str, Any]) -> str:
    rows = []
    for r in summary["results"]:
        ci = r.get("speedup_ci")
        rows.append(
            [
                r["task"],
                r["verdict"] or "missing",
                fmt(r.get("speedup"), ".2f") + ("x" if r.get("speedup") else ""),
                f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "-",
                fmt(r.get("candidate_ms"), ".3f"),
                fmt(r.get("baseline_ms"), ".3f"),
                fmt(r.get("percent_of_roofline"), ".0f"),
                r.get("code_path") or "-",
                (r.get("reasons") or [""])[0][:70],
            ]
        )
    body = table(
        ["task", "verdict", "speedup", "95% CI", "cand ms", "base ms", "%roof", "path", "first reason"],
        rows,
        right=(2, 4, 5, 6),
    )
    fp = summary["fast_p"]
    geo = summary.get("geomean_speedup")
    foot = (
        f"\npairs {summary['pairs']}  correct {summary['correct_rate']:.0%}  "
        + "  ".join(f"fast_{k} {v:.0%}" for k, v in fp.items())
        + (f"  geomean speedup {geo:.2f}x" if geo else "")
        + (f"  (baseline {summary.get('baseline')})" if summary.get("baseline") else "")
    )
    timed = sorted((r for r in summary["results"] if r.get("speedup")), key=lambda r: r["speedup"])
    if timed:
        foot += "\nslowest against the baseline: " + ", ".join(
            f"{r['task']} {r['speedup']:.2f}x" for r in timed[:3]
        )
    took = sorted((r for r in summary["results"] if r.get("seconds")), key=lambda r: -r["seconds"])
    if took:
        foot += f"\nevaluation wall time {sum(r['seconds'] for r in took):.0f} s; longest: " + ", ".join(
            f"{r['task']} {r['seconds']:.0f} s" for r in took[:3]
        )
    if summary.get("missing"):
        foot += f"\nno solution for: {', '.join(summary['missing'])}"
    return body + foot
