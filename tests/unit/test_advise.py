"""`karena advise`: the cheapest machine kind for a call mix at a latency target, from stored
records and hardware profiles of two machines.

Both machines' records and profiles are SYNTHETIC (written by this test into a temp store, with
made-up machine names): the advisor's arithmetic is what is tested, so the figures are chosen to
make the answer flip with the latency target."""

import json
from pathlib import Path

import pytest

from kernelarena.cli import main
from kernelarena.hw.profile import HardwareProfile
from kernelarena.hw.store import save_profile
from kernelarena.store.sqlite import Store
from kernelarena.types import BenchResult, Measurement, Verdict, to_jsonable

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

A = "cpu:SYNTHETIC Small CPU:2cores"  # cheap and slow
B = "cpu:SYNTHETIC Big CPU:8cores"  # dear and fast


def _profile(name: str, cores: int, bw: float, flops: float) -> HardwareProfile:
    return HardwareProfile(f"id-{cores}", "cpu", name, name, cores, cores, None, None, None, bw, (), (), (),
                           flops, flops, flops, "2026-01-01T00:00:00Z")  # fmt: skip


def _put(store: Store, i: int, machine: str, task: str, ms: float, pct: float | None = None,
         work: tuple[float, float] | None = None, verdict: bool = True) -> None:  # fmt: skip
    meas = Measurement(ms, ms / 20, (ms * 0.98, ms * 1.02), 60, 6, "cold", "offline", 2)
    base = Measurement(ms * 2, ms / 10, (ms * 1.9, ms * 2.1), 60, 6, "cold", "offline", 2)
    res = BenchResult(Verdict(verdict, () if verdict else ("wrong",), (), (), (), (), 1.0), "eager", meas, base,
                      2.0, (1.9, 2.1), False, pct, flops=work[0] if work else None,
                      bytes_moved=work[1] if work else None)  # fmt: skip
    meta = {"task": task, "task_hash": "t", "solution": f"/sol/{task}.py", "solution_hash": f"h{i}",
            "baseline": "eager", "device": machine, "toolchain": {}}  # fmt: skip
    store.put(f"k{i}", "bench", meta, {"verdict": "pass" if verdict else "fail", "speedup": 2.0,
                                       "result": to_jsonable(res)})  # fmt: skip


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Path]:
    db = tmp_path / "k.db"
    with Store(db) as s:
        _put(s, 0, A, "rmsnorm", 3.0)
        _put(s, 1, A, "swiglu", 5.0)
        _put(s, 2, A, "fused_linear_cross_entropy", 20.0, pct=40.0, work=(8.6e9, 7e7))
        _put(s, 3, B, "rmsnorm", 1.0)
        _put(s, 4, B, "swiglu", 1.5)
        _put(s, 5, B, "swiglu", 0.1, verdict=False)  # a failed candidate's time is never used
    save_profile(db, _profile("SYNTHETIC Small CPU", 2, 2e10, 2e11))
    save_profile(db, _profile("SYNTHETIC Big CPU", 8, 1e11, 1e12))
    prices = tmp_path / "prices.toml"
    prices.write_text(f'[machines."{A}"]\nusd_per_hour = 0.10\nname = "small"\n'
                      f'[machines."{B}"]\nusd_per_hour = 0.40\nname = "big"\n')  # fmt: skip
    mix = tmp_path / "mix.toml"
    mix.write_text("[calls_per_s]\nrmsnorm = 100\nswiglu = 100\nfused_linear_cross_entropy = 10\n")
    mix2 = tmp_path / "mix2.toml"
    mix2.write_text("[calls_per_s]\nrmsnorm = 100\nswiglu = 100\n")
    return {"db": db, "prices": prices, "mix": mix, "mix2": mix2}


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["advise", "llm", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_cheapest_without_latency_target(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(
        capsys, "--db", str(setup["db"]), "--prices", str(setup["prices"]), "--mix", str(setup["mix"])
    )
    assert code == 0 and out["best"] == A
    small, big = {o["machine"]: o for o in out["options"]}[A], {o["machine"]: o for o in out["options"]}[B]
    # small: 100 x 3 ms + 100 x 5 ms + 10 x 20 ms = 1.0 machine-s/s -> ceil(1.0 / 0.7) = 2 machines
    assert small["busy_fraction"] == pytest.approx(1.0) and small["machines_needed"] == 2
    assert small["usd_per_hour_total"] == pytest.approx(0.20)
    assert small["usd_per_million_calls"] == pytest.approx(0.20 / (3600 * 210) * 1e6)
    # big has no fused CE record: estimated from its profile's roofline at the 40% reached on small
    ce = next(t for t in big["tasks"] if t["task"] == "fused_linear_cross_entropy")
    assert ce["ms_per_call"] == pytest.approx(8.6e9 / 1e12 * 1e3 / 0.40) and "estimated from" in ce["source"]
    assert big["machines_needed"] == 1 and big["usd_per_hour_total"] == pytest.approx(0.40)
    # a failed run is not used at all (neither its 0.1 ms candidate nor its 0.2 ms baseline)
    assert next(t for t in big["tasks"] if t["task"] == "swiglu")["ms_per_call"] == 1.5
    assert big["profile"]["mem_bw_bytes_per_s"] == 1e11
    assert any("queueing" in a for a in out["assumptions"])


def test_latency_target_flips_the_answer(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--db", str(setup["db"]), "--prices", str(setup["prices"]), "--mix", str(setup["mix2"])]
    code, out = _run(capsys, *base)
    assert code == 0 and out["best"] == A
    code, out = _run(capsys, *base, "--latency-ms", "4")
    assert code == 0 and out["best"] == B
    small = next(o for o in out["options"] if o["machine"] == A)
    assert not small["eligible"] and "swiglu: 5 ms per call > latency target 4 ms" in small["why_not"][0]
    code, out = _run(capsys, *base, "--latency-ms", "0.5")
    assert code == 1 and out["best"] is None


def test_text_output_prints_assumptions(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "advise",
            "llm",
            "--db",
            str(setup["db"]),
            "--prices",
            str(setup["prices"]),
            "--mix",
            str(setup["mix2"]),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0 and "cheapest: " + A in text and "assumptions:" in text and "$0.2/h" in text


def test_bad_inputs_exit_2(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[machines."x"]\nusd_per_hour = -1\n')
    assert main(["advise", "llm", "--db", str(setup["db"]), "--prices", str(bad)]) == 2
    mix = tmp_path / "m.toml"
    mix.write_text("[calls_per_s]\nnot_a_task = 3\n")
    assert (
        main(["advise", "llm", "--db", str(setup["db"]), "--prices", str(setup["prices"]), "--mix", str(mix)])
        == 2
    )
