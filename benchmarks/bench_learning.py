"""Does the attention help? TSN against STA-CNN over many seeds, with confidence intervals.

One seed of ``attnvideo-train`` is one draw: with 90 test clips one clip is 1.1 points and
one accuracy's binomial standard error is about 5 points. This script runs the default
recipe (the synthetic default job of ``attnvideo-train``) once per seed, each seed as its
own ``python -m attnvideo.train --seed K --output-dir OUT/seedK`` process, reads the
``metrics.json`` each run writes, and reports per seed and in summary:

- fused, RGB and flow video top-1 of every run (``tsn``, ``stacnn``; with ``--ablations``
  also ``tsn+ta`` and ``tsn+sa``);
- per metric, the paired difference run - TSN over seeds: its mean with a 95% confidence
  interval (Student t over seeds) and wins/ties/losses. Against TSN, STA-CNN's flow
  stream differs only by the temporal attention (TA); its RGB stream by TA + the spatial
  attention + the GAP auxiliary loss (SA + GAP alone is ``tsn+sa``, see ``--ablations``);
- fused minus the better stream of the same run, on average;
- the number of test clips, and each accuracy's binomial standard error and Wilson 95%
  interval.

The test split. The recipe's synthetic dataset tests 40 clips per class (400): clips
beyond the 30 per class of the training recipe, from split 1's test groups, listed only in
``testlist01.txt`` (``attnvideo-train --synthetic-test-videos-per-class``), so training
is unchanged and one accuracy's binomial standard error is <= 2.5 points.
``--test-videos-per-class N`` sets it (0: the 9 of the 30 clips per class). Clips of
one group share background and actor texture (as UCF-101's groups share actor and
scene), so they are not independent draws of new scenes: the binomial error is a lower
bound on the error against new groups.

The temporal attention's warm start. The recipe starts STA-CNN's flow stream from the
seed's trained TSN flow stream (``--ta-from-tsn``) and trains it ``ta_epochs`` more.
``--ablations`` also trains, per seed, the control with the same start and the same
epochs but no attention (``seedK/control``): ``stacnn - control flow`` is the
attention's own effect, with the extra epochs taken out.

Cores. Seeds run as ``--jobs`` processes at once (default 2), each with ``--threads``
torch threads (``OMP_NUM_THREADS``, default 1) and ``--workers`` DataLoader workers
(default 0: frames are decoded in the training process). Measured on the 2-core
development machine, shared with other work (load average 4-5), two seeds of a small job
(``--runs tsn``, 2 epochs per stream, no loader workers): 59 s and 69 s run at once with
1 thread each, against 231 s and 276 s one after the other with 2 threads each. With the
recipe's one loader worker (1 epoch per stream): 110 s and 115 s against 161 s and 277 s.
A loader worker starts as a fresh process for every stream's training and test loader,
15-30 s each under that load; the same two 1-thread jobs took 22 s without workers (at
load 2.6). The metrics were identical with and without workers (samples depend on seed,
epoch and index only); 1 and 2 threads changed one fused top-5 value, so compare seeds run
with the same ``--threads``. The data and its flow are made once, before any seed starts,
and every seed reads the same cache.

Resumable: a seed whose run folder holds a ``metrics.json`` with every run asked for and
the same settings is not rerun; a killed seed continues from its checkpoints.

Run::

    python benchmarks/bench_learning.py                 # 10 seeds, 400 test clips, 2 x 1 thread
    python benchmarks/bench_learning.py --seeds 4       # a pilot
    python benchmarks/bench_learning.py --ablations     # + tsn+ta, tsn+sa, the control
    python benchmarks/bench_learning.py --quick         # smoke run (tiny data, 1 epoch)
    python benchmarks/bench_learning.py -- --flow-epochs 60   # flags for attnvideo-train

It prints the tables and writes JSON (machine, torch version, commit, the arguments and
every per-seed number) to ``benchmarks/results/bench_learning.json`` and the run folder.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import commit, machine, machine_line

from attnvideo.engine.evaluation import wilson_interval  # the interval the runs print

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("fused", "rgb", "flow")
Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
# What a metric's difference against TSN measures, per run (see the module docstring).
EFFECTS = {
    "stacnn": {"fused": "STA-CNN", "rgb": "TA + SA + GAP aux", "flow": "TA"},
    "tsn+ta": {"fused": "TA", "rgb": "TA", "flow": "TA"},
    "tsn+sa": {"fused": "SA + GAP aux", "rgb": "SA + GAP aux", "flow": "none (same stream)"},
}
# --other-data: a UCF-101-format set the recipe was not tuned on. Six of its 16 motions
# never occur in the built-in set, and it has more distractors, a shorter action and a
# less reliable context cue; 20 clips per class train about as many clips (224) as the
# built-in 30 (210), and 25 per class are tested (400 clips).
OTHER_DATA: dict[str, Any] = dict(
    num_classes=16,
    videos_per_class=20,
    test_videos_per_class=25,
    num_frames=32,
    size=(64, 64),
    action_fraction=0.2,
    distractors=4,
    context_cue=0.5,
    seed=1,
)
QUICK_TRAIN_ARGS = [
    "--synthetic-classes", "3", "--synthetic-videos-per-class", "10",
    "--synthetic-frames", "16", "--synthetic-size", "32", "--input-size", "32",
    "--resize", "32", "--num-segments", "2", "--test-segments", "2", "--new-length", "2",
    "--batch-size", "4", "--epochs", "1", "--flow-epochs", "1", "--ta-epochs", "1",
]  # fmt: skip


# --- statistics ------------------------------------------------------------------------


def t_two_sided_mass(t: float, df: int) -> float:
    """``P(|T| <= t)`` for Student's t with ``df`` (integer) degrees of freedom.

    Exact closed forms (Abramowitz & Stegun 26.7.3-4), with ``theta = atan(t / sqrt(df))``.
    """
    if df < 1 or int(df) != df:
        raise ValueError(f"df: expected an integer >= 1, got {df!r}")
    theta = math.atan(abs(t) / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    term = total = 1.0
    if df % 2 == 1:
        if df == 1:
            return 2 * theta / math.pi
        for k in range(1, (df - 1) // 2):
            term *= c * c * (2 * k) / (2 * k + 1)
            total += term
        return 2 / math.pi * (theta + s * c * total)
    for k in range(1, df // 2):
        term *= c * c * (2 * k - 1) / (2 * k)
        total += term
    return s * total


def t_quantile(level: float, df: int) -> float:
    """The ``t`` with ``P(|T| <= t) = level`` (e.g. 0.95 -> the 97.5% quantile), by bisection."""
    if not 0 < level < 1:
        raise ValueError(f"level: expected a value in (0, 1), got {level!r}")
    lo, hi = 0.0, 1.0
    while t_two_sided_mass(hi, df) < level:
        lo, hi = hi, 2 * hi
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_two_sided_mass(mid, df) < level:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2


@dataclass(frozen=True)
class MeanCI:
    """Mean of paired values with a Student-t confidence interval (None with one value)."""

    n: int
    mean: float
    sd: float | None
    low: float | None
    high: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "sd": self.sd, "ci95": [self.low, self.high]}


def mean_ci(values: Sequence[float], level: float = 0.95) -> MeanCI:
    """Mean and ``level`` confidence interval ``mean +- t(n-1) * sd / sqrt(n)``."""
    n = len(values)
    if n == 0:
        raise ValueError("values: expected at least one value")
    mean = sum(values) / n
    if n == 1:
        return MeanCI(1, mean, None, None, None)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(level, n - 1) * sd / math.sqrt(n)
    return MeanCI(n, mean, sd, mean - half, mean + half)


def wins_ties_losses(diffs: Sequence[int | float]) -> tuple[int, int, int]:
    """How many differences are > 0, == 0 and < 0 (pass counts of clips: ties are exact)."""
    return (
        sum(d > 0 for d in diffs),
        sum(d == 0 for d in diffs),
        sum(d < 0 for d in diffs),
    )


def binomial_se(correct: int, n: int) -> float:
    """Standard error of an accuracy ``correct / n``, in points: ``100 sqrt(p (1 - p) / n)``."""
    p = correct / n
    return 100 * math.sqrt(p * (1 - p) / n)


# --- the seed jobs ---------------------------------------------------------------------


def train_argv(args: argparse.Namespace, runs: Sequence[str]) -> list[str]:
    """The ``attnvideo-train`` flags every seed shares (seed and folder come on top)."""
    argv = [*args.train_args, "--runs", ",".join(runs), "--figures", "0"]
    if args.workers is not None:
        argv += ["--workers", str(args.workers)]
    if args.test_videos_per_class is not None:
        argv += ["--synthetic-test-videos-per-class", str(args.test_videos_per_class)]
    return argv


def control_argv(argv: list[str], cfg: Any, folder: Path) -> list[str]:
    """The same-budget control of the warm-started temporal attention (``--ablations``).

    The TSN flow stream of the seed (``flow-avg``) trained ``ta_epochs`` more epochs at
    ``ta_lr`` *without* temporal attention: what ``flow-ta`` gets, less the attention.
    """
    i = argv.index("--runs")
    return [
        *argv[:i], *argv[i + 2 :], "--runs", "tsn", "--modality", "flow", "--no-ta-from-tsn",
        "--init-flow", str(folder / "flow-avg" / "final.safetensors"),
        "--flow-epochs", str(cfg.ta_epochs), "--flow-lr", str(cfg.ta_lr),
    ]  # fmt: skip


def other_data_args(*, progress: bool = True) -> list[str]:
    """Make the ``--other-data`` set and its flow (once); the flags that train on it.

    The recipe stays the synthetic preset's (``--preset synthetic``); the data is read as
    UCF-101 (``--dataset ucf101``: split 1 of its split files).
    """
    from attnvideo.data.flow import precompute_flow
    from attnvideo.data.synthetic import make_synthetic_actions
    from attnvideo.engine.config import _default_cache

    root = _default_cache() / "synthetic-other-c16-v20-t25-s1"
    info = make_synthetic_actions(root, progress=progress, **OTHER_DATA)
    flow = root / "flow-dis"
    precompute_flow(info.video_root, flow, method="dis", workers=2, progress=progress)
    return [
        "--preset", "synthetic", "--dataset", "ucf101", "--data-root", str(info.video_root),
        "--annotations", str(info.split_root), "--flow-root", str(flow),
    ]  # fmt: skip


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    # What does not change the numbers: the loader workers give the same samples.
    skip = ("runs", "resume", "from_preset", "output_dir", "figures", "workers")
    out = {k: v for k, v in config.items() if k not in skip}
    for key in ("init_rgb", "init_flow"):  # the control's start, by any path to the same file
        if out.get(key):
            out[key] = str(Path(out[key]).resolve())
    return out


def seed_finished(folder: Path, expected: dict[str, Any], runs: Sequence[str]) -> bool:
    """Whether ``folder`` holds a finished run of these settings with every run in ``runs``."""
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return _comparable(config) == _comparable(expected) and all(r in metrics for r in runs)


def run_seeds(
    seeds: Sequence[int], argv: list[str], args: argparse.Namespace, runs: Sequence[str]
) -> dict[int, float]:
    """Train the unfinished seeds, ``args.jobs`` processes at a time; wall seconds per seed.

    A seed is one ``attnvideo-train`` process, then (``--ablations``) its control. Each
    finished seed's folder gets ``bench_seed.json``: its wall time, threads and commands.
    """
    from attnvideo.train import config_from_args, get_args_parser

    parser = get_args_parser()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p
        ),
    }
    todo = []
    for seed in seeds:
        folder = args.out_dir / f"seed{seed}"
        cmds = []
        seed_argv = [*argv, "--seed", str(seed), "--output-dir", str(folder), "--resume"]
        cfg = config_from_args(parser.parse_args(seed_argv))
        if not seed_finished(folder, cfg.to_dict(), runs):
            cmds.append(seed_argv)
        if args.ablations:
            c_argv = [*control_argv(argv, cfg, folder), "--seed", str(seed)]
            c_argv += ["--output-dir", str(folder / "control"), "--resume"]
            expected = config_from_args(parser.parse_args(c_argv)).to_dict()
            if not seed_finished(folder / "control", expected, ["tsn"]):
                cmds.append(c_argv)
        if cmds:
            todo.append((seed, folder, cmds))
        else:
            print(f"seed {seed}: finished already ({folder / 'metrics.json'})", flush=True)
    walls: dict[int, float] = {}
    cmd_of: dict[int, list[list[str]]] = {}
    commit_of: dict[int, str] = {}
    # (seed, process, commands left, start, log)
    running: list[tuple[int, subprocess.Popen, list[list[str]], float, Any]] = []

    def start(seed: int, cmds: list[list[str]], t0: float, log: Any) -> None:
        cmd = [sys.executable, "-m", "attnvideo.train", *cmds[0]]
        cmd_of.setdefault(seed, []).append(cmd)
        print(f"seed {seed}: started ({' '.join(cmd[1:])})", flush=True)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        running.append((seed, proc, cmds[1:], t0, log))

    while todo or running:
        while todo and len(running) < args.jobs:
            seed, folder, cmds = todo.pop(0)
            folder.mkdir(parents=True, exist_ok=True)
            log = open(args.out_dir / f"seed{seed}.log", "a")  # noqa: SIM115 (closed below)
            commit_of[seed] = commit()  # the code this seed runs (src may change meanwhile)
            start(seed, cmds, time.perf_counter(), log)
        time.sleep(0.2)
        for item in list(running):
            seed, proc, rest, t0, log = item
            if proc.poll() is None:
                continue
            running.remove(item)
            if proc.returncode != 0:
                log.close()
                for other in running:
                    other[1].terminate()
                tail = (args.out_dir / f"seed{seed}.log").read_text()[-3000:]
                raise SystemExit(f"bench_learning: seed {seed} failed:\n{tail}")
            if rest:
                start(seed, rest, t0, log)
                continue
            log.close()
            walls[seed] = time.perf_counter() - t0
            job = {
                "wall_s": walls[seed],
                "threads": args.threads,
                "argv": cmd_of[seed],
                "commit": commit_of[seed],
            }
            (args.out_dir / f"seed{seed}" / "bench_seed.json").write_text(json.dumps(job))
            metrics = json.loads((args.out_dir / f"seed{seed}" / "metrics.json").read_text())
            top1 = ", ".join(
                f"{r} " + "/".join(f"{metrics[r][m]['top1']:.1f}" for m in METRICS) for r in runs
            )
            print(
                f"seed {seed}: done in {walls[seed]:.0f} s (load {_load()}); top-1 fused/rgb/flow: "
                f"{top1}",
                flush=True,
            )
    return walls


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


# --- the report ------------------------------------------------------------------------


def seed_record(folder: Path, runs: Sequence[str]) -> dict[str, Any]:
    """One seed's numbers: per run and metric, top-1, correct clips, SE and Wilson interval."""
    metrics = json.loads((folder / "metrics.json").read_text())
    control = folder / "control" / "metrics.json"
    if control.is_file():  # --ablations: flow-avg + the warm start's epochs, without TA
        metrics["control"] = json.loads(control.read_text())["tsn"]
        runs = [*runs, "control"]
    record: dict[str, Any] = {}
    for run in runs:
        record[run] = {}
        for metric in METRICS if run != "control" else ("flow",):
            m = metrics[run][metric]
            n = int(m["num_videos"])
            correct = int(m["correct"]) if "correct" in m else round(m["top1"] * n / 100)
            record[run][metric] = {
                "top1": m["top1"],
                "correct": correct,
                "num_videos": n,
                "mean_class_accuracy": m["mean_class_accuracy"],
                "binomial_se": binomial_se(correct, n),
                "wilson95": list(wilson_interval(correct, n)),
            }
    job = folder / "bench_seed.json"
    record["job"] = json.loads(job.read_text()) if job.is_file() else None
    record["train_time_s"] = {
        sub.name: json.loads((sub / "done.json").read_text()).get("train_time_s")
        for sub in sorted(folder.iterdir())
        if (sub / "done.json").is_file()
    }
    return record


def paired(a: Sequence[dict], b: Sequence[dict], effect: str) -> dict[str, Any]:
    """``a - b`` over seeds: mean top-1 difference with its CI, wins/ties/losses in clips."""
    diffs = [x["top1"] - y["top1"] for x, y in zip(a, b, strict=True)]
    w, t, lo = wins_ties_losses([x["correct"] - y["correct"] for x, y in zip(a, b, strict=True)])
    return {
        **mean_ci(diffs).to_dict(),
        "effect": effect,
        "wins": w,
        "ties": t,
        "losses": lo,
        "diffs": diffs,
    }


def summarise(per_seed: dict[int, dict[str, Any]], runs: Sequence[str]) -> dict[str, Any]:
    """Paired differences against TSN, fused against the better stream, accuracies."""
    seeds = sorted(per_seed)
    summary: dict[str, Any] = {"seeds": seeds, "accuracy": {}, "vs_tsn": {}, "fused_vs_best": {}}
    for run in runs:
        summary["accuracy"][run] = {}
        for metric in METRICS:
            values = [per_seed[s][run][metric]["top1"] for s in seeds]
            summary["accuracy"][run][metric] = mean_ci(values).to_dict()
        gain = [
            per_seed[s][run]["fused"]["top1"]
            - max(per_seed[s][run]["rgb"]["top1"], per_seed[s][run]["flow"]["top1"])
            for s in seeds
        ]
        summary["fused_vs_best"][run] = {
            **mean_ci(gain).to_dict(),
            "fused_at_least_best": sum(g >= 0 for g in gain),
        }
        if run == "tsn":
            continue
        summary["vs_tsn"][run] = {
            metric: paired(
                [per_seed[s][run][metric] for s in seeds],
                [per_seed[s]["tsn"][metric] for s in seeds],
                EFFECTS[run][metric],
            )
            for metric in METRICS
        }
    if "stacnn" in runs and all("control" in per_seed[s] for s in seeds):
        summary["ta_vs_control"] = paired(
            [per_seed[s]["stacnn"]["flow"] for s in seeds],
            [per_seed[s]["control"]["flow"] for s in seeds],
            "TA (same epochs, same start)",
        )
    n = per_seed[seeds[0]][runs[0]]["fused"]["num_videos"]
    summary["test_clips"] = n
    summary["binomial_se_at_50"] = 100 * math.sqrt(0.25 / n)
    return summary


def _pm(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}"


def format_report(per_seed: dict[int, dict[str, Any]], summary: dict, runs: Sequence[str]) -> str:
    """The per-seed table and the summary tables, as text."""
    lines = []
    head = ["seed"] + [f"{r} {m}" for r in runs for m in METRICS]
    others = [r for r in runs if r != "tsn"]
    head += [f"{r}-tsn {m}" for r in others for m in METRICS]
    rows = [head]
    for s in summary["seeds"]:
        row = [str(s)] + [f"{per_seed[s][r][m]['top1']:.1f}" for r in runs for m in METRICS]
        row += [
            f"{per_seed[s][r][m]['top1'] - per_seed[s]['tsn'][m]['top1']:+.1f}"
            for r in others
            for m in METRICS
        ]
        rows.append(row)
    lines += _table(rows)
    n = summary["test_clips"]
    lines.append(
        f"\n(video top-1 in %; {n} test clips: one clip = {100 / n:.2f} points, one accuracy's "
        f"binomial standard error <= {summary['binomial_se_at_50']:.1f} points)"
    )
    rows = [["run", "metric", "mean", "sd", "95% CI (seeds)", "SE at mean", "Wilson 95% at mean"]]
    for r in runs:
        for m in METRICS:
            a = summary["accuracy"][r][m]
            k = round(a["mean"] * n / 100)
            lo, hi = wilson_interval(k, n)
            sd = "n/a" if a["sd"] is None else f"{a['sd']:.1f}"
            ci = a["ci95"]
            ci_text = "n/a" if ci[0] is None else f"[{ci[0]:.1f}, {ci[1]:.1f}]"
            rows.append(
                [r, m, f"{a['mean']:.1f}", sd, ci_text, f"{binomial_se(k, n):.1f}",
                 f"[{lo:.1f}, {hi:.1f}]"]
            )  # fmt: skip
    lines.append("\naccuracy over seeds (SE and Wilson: one run's, at the mean accuracy)")
    lines += _table(rows)
    rows = [["difference", "measures", "mean", "95% CI", "wins/ties/losses"]]
    for r in others:
        for m in METRICS:
            d = summary["vs_tsn"][r][m]
            ci = d["ci95"]
            ci_text = "n/a" if ci[0] is None else f"[{_pm(ci[0])}, {_pm(ci[1])}]"
            rows.append(
                [f"{r} - tsn {m}", d["effect"], _pm(d["mean"]), ci_text,
                 f"{d['wins']}/{d['ties']}/{d['losses']}"]
            )  # fmt: skip
    if "ta_vs_control" in summary:
        d = summary["ta_vs_control"]
        ci = d["ci95"]
        ci_text = "n/a" if ci[0] is None else f"[{_pm(ci[0])}, {_pm(ci[1])}]"
        rows.append(
            ["stacnn - control flow", d["effect"], _pm(d["mean"]), ci_text,
             f"{d['wins']}/{d['ties']}/{d['losses']}"]
        )  # fmt: skip
    lines.append(f"\npaired over {len(summary['seeds'])} seeds (Student t)")
    lines += _table(rows)
    rows = [["run", "fused - better stream", "95% CI", "seeds fused >= better"]]
    for r in runs:
        d = summary["fused_vs_best"][r]
        ci = d["ci95"]
        ci_text = "n/a" if ci[0] is None else f"[{_pm(ci[0])}, {_pm(ci[1])}]"
        rows.append(
            [r, _pm(d["mean"]), ci_text, f"{d['fused_at_least_best']}/{len(summary['seeds'])}"]
        )
    lines.append("\nfused against the better stream of the same run")
    lines += _table(rows)
    return "\n".join(lines)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = [" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return out


# --- main ------------------------------------------------------------------------------


def get_args_parser() -> argparse.ArgumentParser:
    """The command line; flags after ``--`` go to every ``attnvideo-train`` run."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default 10)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument(
        "--ablations",
        action="store_true",
        help="also tsn+ta and tsn+sa, and per seed the same-budget control of the "
        "warm-started temporal attention (flow-avg trained on without it)",
    )
    p.add_argument(
        "--test-videos-per-class",
        type=int,
        default=None,
        help="test clips per class (default: the recipe's, 40, i.e. 400 clips; 0 = the "
        "9 of the 30 clips per class; attnvideo-train --synthetic-test-videos-per-class)",
    )
    p.add_argument(
        "--other-data",
        action="store_true",
        help="the recipe on a UCF-101-format set it was not tuned on (OTHER_DATA: 16 "
        "classes, 6 motions the built-in set lacks, 4 distractors, shorter actions)",
    )
    p.add_argument("--jobs", type=int, default=2, help="seeds trained at once")
    p.add_argument("--threads", type=int, default=1, help="torch threads per seed")
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="DataLoader workers per seed (-1: the recipe's); 0 decodes in the training "
        "process, which gives the same samples (they depend on seed, epoch and index only)",
    )
    p.add_argument(
        "--out-dir", type=Path, default=None, help="run folders (default runs/bench_learning)"
    )
    p.add_argument("--output", type=Path, default=None, help="JSON path")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, tiny data")
    p.add_argument("train_args", nargs="*", help="after --: flags for attnvideo-train")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the JSON record."""
    args = get_args_parser().parse_args(argv)
    if args.quick:
        args.train_args = [*QUICK_TRAIN_ARGS, *args.train_args]
        args.seeds = 2 if args.seeds is None else args.seeds
        if args.test_videos_per_class is None:
            args.test_videos_per_class = 5
    args.seeds = 10 if args.seeds is None else args.seeds
    default_out = "bench_learning" + ("-quick" if args.quick else "")
    default_out += "-other" if args.other_data else ""
    args.out_dir = (args.out_dir or ROOT / "runs" / default_out).resolve()
    runs = ["tsn", "tsn+ta", "tsn+sa", "stacnn"] if args.ablations else ["tsn", "stacnn"]
    args.workers = None if args.workers < 0 else args.workers
    if args.seeds < 1 or args.jobs < 1 or args.threads < 1:
        raise SystemExit("bench_learning: --seeds, --jobs and --threads must be >= 1")
    bad = {"--seed", "--output-dir", "--runs", "--ablation", "--modality"} & {
        a.split("=")[0] for a in args.train_args
    }
    if bad:
        raise SystemExit(f"bench_learning: {sorted(bad)} are set per seed by the benchmark")

    import torch

    from attnvideo.engine import DistEnv
    from attnvideo.engine.inputs import prepare_data
    from attnvideo.train import config_from_args
    from attnvideo.train import get_args_parser as train_parser

    start, started_at = time.perf_counter(), commit()
    if args.other_data:
        if args.test_videos_per_class is not None:
            raise SystemExit("bench_learning: --other-data has its own test split")
        args.train_args = [*other_data_args(), *args.train_args]
    argv = train_argv(args, runs)
    cfg = config_from_args(train_parser().parse_args(argv))
    if cfg.preset != "synthetic":
        raise SystemExit("bench_learning: the benchmark runs the synthetic recipe")
    if args.ablations and not cfg.ta_from_tsn:
        raise SystemExit("bench_learning: the control of --ablations is that of --ta-from-tsn")
    # The data and its flow, once for every seed (the seeds find them complete).
    torch.set_num_threads(max(1, args.jobs * args.threads))
    prepare_data(cfg, DistEnv(0, 1, 0, torch.device("cpu")))
    data_s = time.perf_counter() - start
    print(f"data ready in {data_s:.0f} s: {cfg.data_root}  (load {_load()})", flush=True)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    run_seeds(seeds, argv, args, runs)
    per_seed = {s: seed_record(args.out_dir / f"seed{s}", runs) for s in seeds}
    summary = summarise(per_seed, runs)
    print()
    print(format_report(per_seed, summary, runs))
    print(
        f"\n{machine_line()}; {args.jobs} job(s) x {args.threads} thread(s); "
        f"{time.perf_counter() - start:.0f} s; load {_load()}"
    )
    record = {
        "benchmark": "bench_learning",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "torch": torch.__version__,
        "commit": started_at,
        "commit_at_end": commit(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "runs": runs,
        "train_argv": argv,
        "config": cfg.to_dict(),
        "data_s": data_s,
        "loadavg_end": _load(),
        "per_seed": {str(s): per_seed[s] for s in seeds},
        "summary": summary,
    }
    out = args.output or ROOT / "benchmarks" / "results" / f"{default_out}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1)
    out.write_text(text)
    (args.out_dir / "bench_learning.json").write_text(text)
    print(f"-> {out}")
    return record


if __name__ == "__main__":
    main()
