"""The benchmark scripts still run (tiny shapes): they are how the docs' figures are made."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

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
        "bench_data.py", "--quick", "--skip-flow", "--skip-real", "--skip-stores", "--codec",
        "mpeg4", "--root", str(tmp_path / "videos"), "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    rows = json.loads(out.read_text())["rows"]
    assert [r["output"] for r in rows] == ["float", "uint8"]
    for r in rows:
        for name in ("naive", "attnvideo"):
            assert len(r["rounds"][name]) == 2
            assert r[name]["clips_per_s"] > 0 and r[name]["cpu_ms_per_clip"] > 0


@pytest.mark.slow
def test_bench_data_stores_only_times_the_loader_on_each_flow_store(tmp_path: Path) -> None:
    out = tmp_path / "data.json"
    printed = run(
        "bench_data.py", "--quick", "--stores-only", "--rounds", "1", "--root",
        str(tmp_path / "videos"), "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    record = json.loads(out.read_text())
    assert record["rows"] == [] and record["real_clips"] is None
    stores = record["flow_stores"]
    assert [(r["modality"], r["store"]) for r in stores["rows"]] == [
        (m, s) for m in ("rgb+flow", "flow") for s in ("npy", "flow", "frames")
    ]
    assert all(r["clips_per_s"] > 0 and r["cpu_ms_per_clip"] > 0 for r in stores["rows"])
    read = stores["bytes_per_clip"]  # compressed stores read far less than the .npy
    assert read["flow"] < read["npy"] / 4 and read["frames"] < read["npy"] / 4
    assert "| rgb+flow | flow |" in printed


@pytest.mark.slow
def test_bench_scale_quick_measures_and_projects(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    run("bench_scale.py", "--quick", "--out", str(out), cwd=tmp_path)
    record = json.loads(out.read_text())
    summary = record["summary"]
    assert summary["pairs"] > 0 and summary["bytes_per_pair"]["flow"] > 0
    assert summary["rgb_read_bytes"]["probe"] > 0
    ucf = record["projection"]["UCF-101"]
    assert ucf["disk"]["flow_flow"] < ucf["disk"]["flow_frames"]
    assert all(v > 0 for v in ucf["core_hours"].values())


@pytest.mark.slow
def test_bench_data_real_clip_quick_checks_exactness_and_times_each_reader(
    tmp_path: Path,
) -> None:
    out = tmp_path / "real.json"
    printed = run("bench_data.py", "--real-only", "--quick", "--out", str(out), cwd=tmp_path)
    record = json.loads(out.read_text())
    assert record["rows"] == [] and record["commit"]
    real = record["real_clips"]
    (clip,) = real["clips"]  # --quick: one clip of tests/data/real, the one with 20 keyframes
    assert clip["clip"].startswith("ucf101_") and clip["keyframes"] > 1
    assert clip["frames_probe"] == clip["frames_full_decode"] == 240
    assert len(clip["positions"]["8"]) == 8 and len(clip["positions"]["25"]) == 25
    for name in ("attnvideo cold 8", "attnvideo warm 8", "attnvideo 25"):
        assert clip["checks"][name]["exact"], name
        assert clip["checks"][name]["shifts"] == [0] * (25 if "25" in name else 8)
    readers = {"full decode", "attnvideo warm", "attnvideo cold", "attnvideo probe"}
    has_decord = importlib.util.find_spec("decord") is not None
    assert set(clip["times"]) == readers | ({"decord2"} if has_decord else set())
    assert all(len(t["cpu_ms"]) == 3 and t["cpu_ms_median"] > 0 for t in clip["times"].values())
    assert 0 < clip["stats_warm"]["frames_decoded"] <= clip["frames_full_decode"]
    assert clip["stats_cold"]["probe_frames"] == 240
    assert (real["decord2"] is not None) == has_decord
    assert has_decord or "decord2 is not installed" in printed
    assert "| ucf101_" in printed and "<= 1.0x:" in printed


@pytest.mark.slow
def test_bench_reader_cpu_quick_times_each_reader(tmp_path: Path) -> None:
    out = tmp_path / "cpu.json"
    printed = run(
        "bench_reader_cpu.py", "--quick", "--codec", "mpeg4", "--baseline-src",
        str(ROOT / "src"), "--root", str(tmp_path / "data"), "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    times = json.loads(out.read_text())["ms_cpu_per_sample"]["mpeg4"]
    assert set(times) == {"baseline", "attnvideo", "attnvideo + probe cache"}
    assert all(len(v) == 1 and v[0] > 0 for v in times.values())
    assert "| mpeg4 | attnvideo + probe cache |" in printed


def test_bench_data_compare_finds_the_shift_of_each_frame(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_data as bd

    full = [np.full((2, 3, 3), 10 * i, np.uint8) for i in range(6)]
    index = {}
    for i, frame in enumerate(full):
        index.setdefault(bd._digest(frame), []).append(i)
    wanted = np.array([1, 3, 5])
    exact = bd.compare(np.stack([full[i] for i in wanted]), wanted, full, index)
    assert exact["exact"] and bd.describe(exact) == "exact"
    late = bd.compare(np.stack([full[0], full[2], full[5]]), wanted, full, index)
    assert late["shifts"] == [-1, -1, 0] and not late["exact"]
    assert bd.describe(late) == "shifted by -1 on 2/3"
    off = np.stack([full[1], full[3] + 1, full[5]])  # right frame, other pixel values
    near = bd.compare(off, wanted, full, index)
    assert near["shifts"] == [0, None, 0] and near["nearest"][1] == (0, 1.0)
    assert bd.describe(near) == "1/3 equal no frame (nearest +0, mean abs diff <= 1.00)"
    failed = bd.compare(IndexError("out of range"), wanted, full, index)
    assert not failed["exact"] and bd.describe(failed) == "error (IndexError: out of range)"


@pytest.mark.slow
def test_bench_eval_memory_tiny_model_chunks_agree_and_extrapolate(tmp_path: Path) -> None:
    out = tmp_path / "eval_memory.json"
    printed = run(
        "bench_eval_memory.py", "--backbone", "test_resnet", "--size", "32", "--segments",
        "2", "--crops", "2", "--new-length", "1", "--num-classes", "3", "--chunks", "3", "0",
        "--scaling-crops", "1", "--extrapolate-videos", "4", "--output", str(out), cwd=tmp_path,
    )  # fmt: skip
    record = json.loads(out.read_text())
    rows = record["rows"]
    assert [(r["crops"], r["frames"], r["chunk"]) for r in rows] == [(2, 4, 3), (2, 4, 0),
                                                                     (1, 2, 0)]  # fmt: skip
    assert rows[0]["logit_diff"] < 1e-5 and rows[1]["logit_diff"] == 0.0
    assert rows[2]["logit_diff"] is None  # other views: not comparable
    assert all(r["peak_mb"] >= r["setup_peak_mb"] > 0 and len(r["logits"]) == 3 for r in rows)
    fit = record["fit"]
    assert fit["points"] == 2 and fit["frames"] == 4 * 2 * 2
    expected = fit["intercept_mb"] + fit["mb_per_frame"] * 16
    assert fit["predicted_gb"] * 1024 == pytest.approx(expected)
    assert fit["flow_inputs_gb"] == pytest.approx(16 * 32 * 32 * 4 * 2 / 2**30)
    assert fit["inputs_gb"] == pytest.approx(fit["flow_inputs_gb"] * 5 / 2)
    assert "| 2 x 2 | 4 | 3 |" in printed and "| 2 x 2 | 4 | one pass |" in printed
    assert record["commit"] and record["machine"]["torch"] == torch.__version__


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
