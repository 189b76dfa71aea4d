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
    variants = {r["variant"] for r in record["rows"]}
    assert variants == {"module", "attention", "copy", "clone"}
    assert all(r["median_ms"] > 0 for r in record["rows"])
    assert "attention fwd / copy" in printed


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
