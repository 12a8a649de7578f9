"""`karena report --html` opened in a real headless Chromium: the page renders, logs no console
error, its table's numbers are the numbers `karena report --json` prints, filters and sorting work.
A screenshot is kept in pytest's tmp dir, or in $KARENA_TEST_ARTIFACTS when set.

Where no browser (chromium + chromedriver, selenium) is found the test skips, except in CI
(`CI=true`), where a missing browser is a failure: `.ci/run` installs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kernelarena.api import _meta
from kernelarena.hw.profile import HardwareProfile
from kernelarena.hw.store import save_profile
from kernelarena.store.sqlite import Store
from kernelarena.types import (
    BenchResult,
    CallMetrics,
    CheckOptions,
    Measurement,
    Solution,
    Verdict,
    to_jsonable,
)

pytestmark = pytest.mark.cpu

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "src" / "kernelarena" / "tasks" / "suites" / "llm"


def _browser_paths() -> tuple[str, str]:
    """(chromium binary, chromedriver); skips, or fails under CI=true, when either is missing."""
    missing = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[dev]')")
    binary = next(
        (p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))), None
    )
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        missing.append("chromium and chromedriver (apt-get install chromium chromium-driver)")
    if missing:
        why = "no headless browser: missing " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(why + " (CI=true: .ci/run must install it)")
        pytest.skip(why)
    assert binary and driver
    return binary, driver


def _result(
    speedup: float, cand_ms: float, pct: float | None, flops: float | None, moved: float
) -> dict[str, Any]:
    verdict = Verdict(True, (), (), (), ("outputs",), (), 1.0)

    def meas(ms: float) -> Measurement:
        return Measurement(ms, ms / 20, (ms * 0.97, ms * 1.03), 60, 6, "cold", "offline", 2)

    # per-call metrics as api.bench records them (energy unavailable, as on a VM without RAPL)
    metrics = CallMetrics(peak_rss_added_bytes=int(cand_ms * (5 << 20)), torch_allocated_bytes=16 << 20,
                          small_variant="rows=5,dim=3", small_call_ms=0.02, small_overhead_ms=0.015,
                          overhead_vs_compute=3.0, unavailable=("energy_j_per_call: no RAPL here",))  # fmt: skip
    res = BenchResult(verdict, "eager", meas(cand_ms), meas(cand_ms * speedup), speedup,
                      (speedup * 0.95, speedup * 1.05), False, pct, flops=flops, bytes_moved=moved,
                      metrics=metrics)  # fmt: skip
    return to_jsonable(res)


def _store_records(db: Path) -> None:
    """Bench records in the shape api.bench stores, from two machines, plus one failed record."""
    with Store(db) as store:
        cases = [  # task, machine, speedup, cand ms, % roofline, flops
            ("rmsnorm", "cpu:Test Xeon:2cores", 1.8, 3.07, 58.0, 5e6),
            ("rmsnorm", "cpu:Test Xeon:2cores", 2.1, 2.70, 66.0, 5e6),  # a later run: history
            ("softmax", "cpu:Test Xeon:2cores", 0.7, 1.50, 20.0, 2e7),
            ("rmsnorm", "cpu:Test EPYC:8cores", 3.2, 1.10, 71.0, 5e6),
        ]
        for i, (task, machine, sp, ms, pct, flops) in enumerate(cases):
            sol = Solution(SUITE / f"{task}.py", f"h{i}", "c")
            task_obj = type("T", (), {"name": task, "source_hash": "t"})()
            meta = {**_meta(task_obj, sol, "eager", CheckOptions()), "device": machine}  # type: ignore[arg-type]
            key = f"k{i}" if i != 1 else "k0"  # the second rmsnorm replaces the first as "latest"
            store.put(key + machine, "bench", meta, {"verdict": "pass", "speedup": sp,
                      "result": _result(sp, ms, pct, flops, 32 << 20)})  # fmt: skip
        failed = to_jsonable(
            BenchResult(Verdict(False, ("outputs differ </script> at [3]",), (), (), (), (), 1.0), "eager")
        )
        meta = {**_meta(type("T", (), {"name": "swiglu", "source_hash": "t"})(),  # type: ignore[arg-type]
                        Solution(SUITE / "swiglu.py", "hx", "c"), "eager", CheckOptions()), "device": "cpu:Test Xeon:2cores"}  # fmt: skip
        store.put("kfail", "bench", meta, {"verdict": "fail", "speedup": None, "result": failed})
    prof = HardwareProfile("m1", "cpu", "Test Xeon", "Test Xeon", 2, 2, None, None, None, 18.9e9, (), (), (),
                           200e9, 150e9, 200e9, "2026-01-01T00:00:00Z")  # fmt: skip
    save_profile(db, prof)


@pytest.fixture
def report(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    db = tmp_path / "k.db"
    _store_records(db)
    _store_agent_run(db)
    out = tmp_path / "report.html"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-m", "kernelarena.cli", "report", "--db", str(db), "--html", str(out),
                           "--json"], capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout)


def _store_agent_run(db: Path) -> None:
    """An agent run of three rounds: wrong, then 1.5x, then 2.5x (what the convergence chart plots)."""
    from kernelarena.agent.records import AgentStore

    with AgentStore(db) as store:
        store.start_run("run-a", "swiglu", {"model": "scripted"})
        for rnd, (passed, speedup) in enumerate([(False, None), (True, 1.5), (True, 2.5)], start=1):
            store.record_attempt("run-a", rnd, 0, "code", None, None, speedup, None, passed, None)


@pytest.fixture
def driver() -> Iterator[Any]:
    binary, driver_path = _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1800",
    ):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        yield d
    finally:
        d.quit()


def _table(d: Any) -> dict[str, dict[str, str]]:
    rows = d.find_elements("css selector", "#records tbody tr")
    return {r.get_attribute("data-key"): {c.get_attribute("data-col"): c.text for c in
            r.find_elements("css selector", "td")} for r in rows}  # fmt: skip


@pytest.mark.timeout(180)
def test_html_report_in_headless_chromium(
    report: tuple[Path, dict[str, Any]], driver: Any, tmp_path: Path
) -> None:
    out, js = report
    page = out.read_text()
    assert (
        "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    )  # offline
    driver.get(out.as_uri())
    severe = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not severe, severe
    # the page's table shows the --json records, number for number
    cells = _table(driver)
    assert len(cells) == len(js["records"]) == 4  # rmsnorm on two machines, softmax, swiglu
    for r in js["records"]:
        row = cells[f"{r['task']}|{r['solution']}|{r['baseline']}|{r['machine']}"]
        assert row["verdict"] == r["verdict"]
        assert row["speedup"] == ("-" if r["speedup"] is None else f"{r['speedup']:.3f}")
        if r["candidate_ms"] is not None:
            assert float(row["candidate_ms"]) == pytest.approx(r["candidate_ms"], rel=1e-3)
            assert row["percent_of_roofline"] == f"{r['percent_of_roofline']:.0f}"
        # the per-call metrics columns show the JSON's figures; missing ones are "-"
        for col in ("peak_mem_mib", "alloc_mib", "overhead_us", "overhead_vs_compute", "energy_mj"):
            if r[col] is None:
                assert row[col] == "-", (col, row[col])
            else:
                assert float(row[col]) == pytest.approx(r[col], rel=5e-3), col
    timed = [r for r in js["records"] if r["candidate_ms"] is not None]
    assert all(r["peak_mem_mib"] and r["overhead_us"] == pytest.approx(15.0) for r in timed)
    assert all(r["energy_mj"] is None and "no RAPL" in r["metrics_unavailable"][0] for r in timed)
    assert "</script>" in json.dumps(js["records"])  # the escaped failure reason made it through intact
    assert any(c["reason"] == "outputs differ </script> at [3]" for c in cells.values())
    # the speedup chart has one point per timed record, at the JSON's speedups
    pts = sorted(
        float(c.get_attribute("data-speedup"))
        for c in driver.find_elements("css selector", "#chart-speedup circle")
    )
    assert pts == sorted(r["speedup"] for r in js["records"] if r["speedup"])
    assert driver.find_elements("css selector", "#chart-fastp polyline")
    assert driver.find_elements("css selector", "#chart-roofline circle")
    # agent convergence: best verified speedup so far and correct rate, per round
    assert [(a["round"], a["best_speedup"], round(a["correct_rate"], 3)) for a in js["agent_runs"]] == [
        (1, None, 0.0), (2, 1.5, 0.5), (3, 2.5, 0.667)
    ]  # fmt: skip
    lines = driver.find_elements("css selector", "#chart-agent polyline")
    assert sorted(len(p.get_attribute("points").split()) for p in lines) == [2, 3]
    assert "no agent runs" not in driver.find_element("id", "chart-agent").text
    assert len(driver.find_elements("css selector", "#chart-history circle")) >= 1
    # filter by machine: only that machine's records remain, in table and charts
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", "filter-machine")).select_by_value("cpu:Test EPYC:8cores")
    assert list(_table(driver)) == ["rmsnorm|rmsnorm.py|eager|cpu:Test EPYC:8cores"]
    assert len(driver.find_elements("css selector", "#chart-speedup circle")) == 1
    Select(driver.find_element("id", "filter-machine")).select_by_value("")
    # sort by speedup, descending on the second click; missing speedups go last
    th = driver.find_element("css selector", "#records th[data-col=speedup]")
    th.click()
    th.click()
    shown = [c.text for c in driver.find_elements("css selector", "#records td[data-col=speedup]")]
    nums = [float(s) for s in shown if s != "-"]
    assert nums == sorted(nums, reverse=True) and shown[-1] == "-"
    assert not [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    art = Path(os.environ.get("KARENA_TEST_ARTIFACTS") or tmp_path)
    art.mkdir(parents=True, exist_ok=True)
    shot = art / "report_html.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
