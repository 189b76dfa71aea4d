"""benchmarks/bench_learning.py: its statistics against hand-computed values, and a smoke run."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(
        "bench_learning", ROOT / "benchmarks" / "bench_learning.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_learning"] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


@pytest.mark.parametrize(
    ("df", "expected"),
    # Student t 97.5% quantiles from printed tables (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2)
    [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (9, 2.262), (29, 2.045), (100, 1.984)],
)
def test_t_quantile_matches_the_table(df: int, expected: float) -> None:
    assert bench.t_quantile(0.95, df) == pytest.approx(expected, abs=5e-4)


def test_t_two_sided_mass_closed_forms() -> None:
    # df = 1 is Cauchy: P(|T| <= 1) = 1/2; df = 2: P(|T| <= t) = t / sqrt(2 + t^2).
    assert bench.t_two_sided_mass(1.0, 1) == pytest.approx(0.5, abs=1e-12)
    assert bench.t_two_sided_mass(1.0, 2) == pytest.approx(1 / math.sqrt(3), abs=1e-12)
    assert bench.t_two_sided_mass(0.0, 7) == 0.0
    # Large df tends to the normal: P(|Z| <= 1.959964) = 0.95.
    assert bench.t_two_sided_mass(1.959964, 100_000) == pytest.approx(0.95, abs=1e-4)
    with pytest.raises(ValueError, match="df"):
        bench.t_two_sided_mass(1.0, 0)


def test_mean_ci_by_hand() -> None:
    # [1, 2, 3, 4]: mean 2.5, sd sqrt(5/3) = 1.29099, se 0.645497, t(3) = 3.182446.
    ci = bench.mean_ci([1.0, 2.0, 3.0, 4.0])
    assert ci.mean == 2.5
    assert ci.sd == pytest.approx(math.sqrt(5 / 3))
    half = 3.182446 * math.sqrt(5 / 3) / 2
    assert ci.low == pytest.approx(2.5 - half, abs=1e-5)
    assert ci.high == pytest.approx(2.5 + half, abs=1e-5)
    same = bench.mean_ci([4.4, 4.4, 4.4])
    assert (same.low, same.high) == pytest.approx((4.4, 4.4))
    one = bench.mean_ci([3.0])
    assert (one.mean, one.sd, one.low, one.high) == (3.0, None, None, None)


def test_wins_ties_losses_counts_exact_ties() -> None:
    assert bench.wins_ties_losses([3, 0, -1, 2, 0]) == (2, 2, 1)
    assert bench.wins_ties_losses([]) == (0, 0, 0)


def test_binomial_se_and_wilson_by_hand() -> None:
    assert bench.binomial_se(200, 400) == pytest.approx(2.5)  # the target
    assert bench.binomial_se(45, 90) == pytest.approx(100 * math.sqrt(0.25 / 90))  # 5.27
    # Wilson 95% intervals (Newcombe 1998, table I: 0/10 -> 0-0.2775, 5/10 -> 0.2366-0.7634).
    lo, hi = bench.wilson_interval(5, 10)
    assert (lo, hi) == pytest.approx((23.66, 76.34), abs=0.01)
    lo, hi = bench.wilson_interval(0, 10)
    assert (lo, hi) == pytest.approx((0.0, 27.75), abs=0.01)
    lo, hi = bench.wilson_interval(10, 10)
    assert (lo, hi) == pytest.approx((72.25, 100.0), abs=0.01)
    with pytest.raises(ValueError, match="correct"):
        bench.wilson_interval(11, 10)


def _seed(tsn: tuple[int, int, int], sta: tuple[int, int, int], n: int = 10) -> dict:
    def run(correct: tuple[int, int, int]) -> dict:
        return {
            m: {"top1": 100 * k / n, "correct": k, "num_videos": n}
            for m, k in zip(bench.METRICS, correct, strict=True)
        }

    return {"tsn": run(tsn), "stacnn": run(sta)}


def test_summarise_pairs_seeds() -> None:
    # (fused, rgb, flow) correct clips of 10, per seed.
    per_seed = {
        0: _seed((5, 4, 5), (7, 6, 5)),
        1: _seed((6, 6, 4), (6, 5, 5)),
        2: _seed((4, 3, 4), (7, 8, 4)),
    }
    s = bench.summarise(per_seed, ["tsn", "stacnn"])
    fused = s["vs_tsn"]["stacnn"]["fused"]
    assert fused["diffs"] == pytest.approx([20.0, 0.0, 30.0])
    assert (fused["wins"], fused["ties"], fused["losses"]) == (2, 1, 0)
    assert fused["mean"] == pytest.approx(50 / 3)
    rgb = s["vs_tsn"]["stacnn"]["rgb"]
    assert (rgb["wins"], rgb["ties"], rgb["losses"]) == (2, 0, 1)
    # fused - max(rgb, flow): tsn 0, 0, 0; stacnn +10, +10, -10.
    assert s["fused_vs_best"]["tsn"]["mean"] == pytest.approx(0.0)
    assert s["fused_vs_best"]["stacnn"]["mean"] == pytest.approx(10 / 3)
    assert s["fused_vs_best"]["stacnn"]["fused_at_least_best"] == 2
    assert s["test_clips"] == 10 and s["binomial_se_at_50"] == pytest.approx(100 * 0.5 / 10**0.5)
    text = bench.format_report(per_seed, s, ["tsn", "stacnn"])
    assert "stacnn - tsn fused" in text and "2/1/0" in text


def test_a_finished_seed_is_found_through_another_folder_name(tmp_path: Path) -> None:
    # Pooling seed folders through links (--out-dir with symlinks) must not rerun them:
    # the control's --init-flow names the same file by another path.
    seed = tmp_path / "first" / "seed0"
    (seed / "control").mkdir(parents=True)
    config = {"seed": 0, "output_dir": str(seed / "control"),
              "init_flow": str(seed / "flow-avg" / "final.safetensors")}  # fmt: skip
    (seed / "control" / "config.json").write_text(json.dumps(config))
    (seed / "control" / "metrics.json").write_text(json.dumps({"tsn": {}}))
    (tmp_path / "pooled").mkdir()
    (tmp_path / "pooled" / "seed0").symlink_to(seed)
    linked = tmp_path / "pooled" / "seed0"
    expected = {**config, "init_flow": str(linked / "flow-avg" / "final.safetensors")}
    assert bench.seed_finished(linked / "control", expected, ["tsn"])
    other = {**config, "init_flow": str(tmp_path / "elsewhere.safetensors")}
    assert not bench.seed_finished(linked / "control", other, ["tsn"])


@pytest.mark.slow
def test_quick_run_writes_every_seed_and_resumes(tmp_path: Path) -> None:
    out, record_path = tmp_path / "runs", tmp_path / "bench.json"
    cmd = [
        sys.executable, str(ROOT / "benchmarks" / "bench_learning.py"), "--quick",
        "--out-dir", str(out), "--output", str(record_path),
    ]  # fmt: skip
    env = {**os.environ, "ATTNVIDEO_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads(record_path.read_text())
    assert record["runs"] == ["tsn", "stacnn"]
    assert set(record["per_seed"]) == {"0", "1"}
    assert record["commit"] and record["machine"]["torch"] == record["torch"]
    # 3 classes x 5 test clips: the 10 clips per class test 3, and 2 are added.
    assert record["summary"]["test_clips"] == 15
    data = Path(record["config"]["data_root"])
    assert record["config"]["synthetic_test_videos_per_class"] == 5
    train = (data / "splits" / "trainlist01.txt").read_text().splitlines()
    assert len(train) == 3 * 7  # the training split of 10 clips per class, unchanged
    for seed in record["per_seed"].values():
        assert seed["job"]["threads"] == 1 and seed["job"]["wall_s"] > 0
        assert seed["job"]["commit"] == record["commit"]
        assert set(seed["train_time_s"]) == {"rgb-tsn", "flow-avg", "rgb-stacnn", "flow-ta"}
        for run in ("tsn", "stacnn"):
            for metric in ("fused", "rgb", "flow"):
                m = seed[run][metric]
                assert m["num_videos"] == 15
                assert m["top1"] == pytest.approx(100 * m["correct"] / 15)
                assert m["wilson95"][0] <= m["top1"] <= m["wilson95"][1]
    vs = record["summary"]["vs_tsn"]["stacnn"]
    assert set(vs) == {"fused", "rgb", "flow"}
    assert all(sum(vs[m][k] for k in ("wins", "ties", "losses")) == 2 for m in vs)
    for text in ("stacnn - tsn flow", "95% CI", "wins/ties/losses", "15 test clips"):
        assert text in done.stdout
    # A second run trains nothing: every seed is finished.
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("finished already") == 2
    assert "started" not in again.stdout
    assert json.loads(record_path.read_text())["summary"] == record["summary"]


def test_other_data_is_read_as_ucf101_with_the_synthetic_recipe(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ATTNVIDEO_CACHE", str(tmp_path))
    tiny = {**bench.OTHER_DATA, "num_classes": 3, "videos_per_class": 4, "num_frames": 8}
    monkeypatch.setattr(bench, "OTHER_DATA", {**tiny, "size": (32, 32)})
    flags = bench.other_data_args(progress=False)
    from attnvideo.train import config_from_args, get_args_parser

    cfg = config_from_args(get_args_parser().parse_args([*flags, "--runs", "tsn,stacnn"]))
    assert cfg.dataset == "ucf101" and cfg.preset == "synthetic" and cfg.ta_from_tsn
    assert cfg.backbone == "test_resnet" and cfg.flow_root.is_dir()
    test = (Path(cfg.annotations) / "testlist01.txt").read_text().split()
    assert len(test) == 3 * tiny["test_videos_per_class"]
    assert sorted(p.stem for p in cfg.flow_root.rglob("*.flow")) == sorted(
        p.stem for p in cfg.video_root.rglob("*.avi")
    )
