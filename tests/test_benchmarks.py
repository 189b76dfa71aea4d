"""The benchmark scripts still run (tiny shapes): they are how the docs' figures are made."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


@pytest.mark.slow
def test_bench_layers_quick_writes_every_layer(tmp_path: Path) -> None:
    out = tmp_path / "layers.json"
    printed = run(
        "bench_layers.py", "--quick", "--no-compile", "--skip-reference", "--min-run-time",
        "0.05", "--output", str(out), cwd=tmp_path,
    )  # fmt: skip
    record = json.loads(out.read_text())
    keys = set(record["attention_over_copy"])
    assert keys == {f"{layer} {shape} eager" for layer in ("spatial", "temporal", "aux")
                    for shape in ("(64, 4, 4)", "(32, 8, 8)")}  # fmt: skip
    assert set(record["attention_over_clone"]) == keys
    assert record["attention_over_eager_copy"] == record["attention_over_copy"]  # eager only
    variants = {r["variant"] for r in record["rows"]}
    assert variants == {"module", "attention", "copy", "clone"}
    assert all(r["median_ms"] > 0 for r in record["rows"])
    assert "attention fwd / copy" in printed
    assert record["allocator"] == "default"


@pytest.mark.slow
def test_bench_layers_one_cell_with_the_reuse_allocator(tmp_path: Path) -> None:
    # --layers/--shapes pick one cell; --allocator reuse restarts the script with glibc's
    # tunables set (they are read at process start).
    out = tmp_path / "temporal.json"
    printed = run(
        "bench_layers.py", "--layers", "temporal", "--shapes", "16x2x2", "--quick",
        "--skip-reference", "--min-run-time", "0.05", "--allocator", "reuse",
        "--output", str(out), cwd=tmp_path,
    )  # fmt: skip
    record = json.loads(out.read_text())
    assert record["allocator"] == "reuse"
    assert record["env"]["MALLOC_MMAP_THRESHOLD_"] == str(2**32)
    assert "allocator: reuse" in printed
    rows = {(r["variant"], r["mode"], r["pass_"]): r["median_ms"] for r in record["rows"]}
    assert {r["layer"] for r in record["rows"]} == {"temporal"}
    key = "temporal (16, 2, 2) eager"
    assert set(record["attention_over_copy"]) == {key}
    ratio = rows[("attention", "eager", "fwd")] / rows[("copy", "eager", "fwd")]
    assert record["attention_over_copy"][key] == pytest.approx(ratio, rel=1e-2, abs=1e-3)


def test_bench_layers_rejects_a_bad_shape(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_layers.py"), "--shapes", "7x7"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "expected CxHxW such as 768x14x14, got '7x7'" in done.stderr


@pytest.mark.slow
def test_bench_data_quick_times_both_loaders_and_outputs(tmp_path: Path) -> None:
    out = tmp_path / "data.json"
    run(
        "bench_data.py", "--quick", "--skip-flow", "--codec", "mpeg4", "--root",
        str(tmp_path / "videos"), "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    rows = json.loads(out.read_text())["rows"]
    assert [r["output"] for r in rows] == ["float", "uint8"]
    for r in rows:
        for name in ("naive", "attnvideo"):
            assert len(r["rounds"][name]) == 2
            assert r[name]["clips_per_s"] > 0 and r[name]["cpu_ms_per_clip"] > 0


def test_bench_layers_judges_each_mode_against_its_own_copy(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_layers as bl

    def row(variant: str, mode: str, ms: float) -> bl.Row:
        return bl.Row("temporal", "(8, 1, 1)", variant, mode, "fwd", ms, 0.0, ms, 1)

    rows = [
        row("attention", "eager", 6.0), row("attention", "compiled", 20.0),
        row("copy", "eager", 2.0), row("copy", "compiled", 10.0), row("clone", "eager", 3.0),
    ]  # fmt: skip
    ratios = bl.verdicts(rows)
    assert ratios["copy"] == {"temporal (8, 1, 1) eager": 3.0, "temporal (8, 1, 1) compiled": 2.0}
    assert ratios["eager_copy"]["temporal (8, 1, 1) compiled"] == 10.0
    assert ratios["clone"]["temporal (8, 1, 1) eager"] == 2.0
    table = bl.summary(rows)
    compiled = next(line for line in table.splitlines() if "| compiled |" in line)
    assert "| 20.0 ms | n/a | 10.0 ms | 2.000 ms | 3.000 ms |" in compiled
    assert "| 2.00x | 10.00x | 6.67x |" in compiled
