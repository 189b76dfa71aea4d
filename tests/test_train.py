"""The training engine (attnvideo.engine) and its command lines: metrics, samplers,
checkpoints, configuration, end-to-end runs, DDP, resume, prediction.

The end-to-end tests share one tiny synthetic dataset (3 classes, 32x32, 8 frames) and
its flow; each run trains a test backbone for a few steps.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from attnvideo.engine import (
    NonFiniteLoss,
    OfflineError,
    Predictor,
    ResumableDistributedSampler,
    SeededSamples,
    ShardSampler,
    compute_metrics,
    evaluate,
    fuse_scores,
    init_weights,
    load_run,
    train,
)
from attnvideo.engine.checkpoints import rng_state, set_rng_state
from attnvideo.engine.distributed import DistEnv, launcher_ranks
from attnvideo.engine.inputs import build_dataset, eval_batch_size, test_loader
from attnvideo.functional import fuse_streams
from attnvideo.train import config_from_args, get_args_parser

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "train_stacnn.py"
CPU = DistEnv(0, 1, 0, torch.device("cpu"))


def parse(*argv: str):
    return config_from_args(get_args_parser().parse_args(list(argv)))


# --------------------------------------------------------------------- fast units
def test_metrics_by_hand():
    # 4 videos, 3 classes; class 0 has 3 videos (2 right), class 1 one video (wrong).
    z = torch.tensor([[3.0, 1, 0], [3, 1, 0], [0, 3, 1], [0, 1, 3]], dtype=torch.float64)
    y = torch.tensor([0, 0, 0, 1])
    scores = {"video_logits": z, "video_labels": y, "clip_logits": z, "clip_labels": y}
    m = compute_metrics(scores, 3)
    assert m["top1"] == pytest.approx(50.0)  # 2 of 4
    assert m["mean_class_accuracy"] == pytest.approx(100 * (2 / 3 + 0) / 2)
    assert m["top5"] == pytest.approx(100.0)  # k = min(5, 3): everything is in the top 3
    assert m["clip_accuracy"] == pytest.approx(50.0)


def test_fusion_is_weighted_sum_of_stream_scores():
    y = torch.tensor([0, 1])
    rgb = {"video_logits": torch.tensor([[1.0, 0.0], [1.0, 0.0]]), "video_labels": y}
    flow = {"video_logits": torch.tensor([[0.0, 0.5], [0.0, 1.0]]), "video_labels": y}
    for d in (rgb, flow):
        d["clip_logits"], d["clip_labels"] = d["video_logits"], y
    fused = fuse_scores(rgb, flow, (1.0, 1.5))
    torch.testing.assert_close(fused["video_logits"], torch.tensor([[1.0, 0.75], [1.0, 1.5]]))
    assert compute_metrics(fused, 2)["top1"] == 100.0
    assert compute_metrics(fuse_scores(rgb, flow, (1.0, 0.5)), 2)["top1"] == 50.0


def test_test_batch_size_and_eval_chunk_follow_the_test_protocol(capsys):
    ucf = parse("--preset", "ucf101", "--data-root", "x", "--annotations", "y")
    assert eval_batch_size(ucf, 8) == 1 and ucf.eval_chunk_frames == 64  # 25 x 10 views
    one_crop = parse("--preset", "ucf101", "--test-crops", "1")
    assert eval_batch_size(one_crop, 1) == 1  # 25 test segments against 3 in training
    three_crops = parse("--test-crops", "3")
    assert eval_batch_size(three_crops, 1) == 1
    demo = parse()  # one view (8 segments, 1 crop): the training batch per process
    for world, batch in ((1, 8), (2, 4)):
        assert eval_batch_size(demo, world) == batch
    chosen = parse("--preset", "ucf101", "--test-batch-size", "4", "--eval-chunk-frames", "0")
    assert eval_batch_size(chosen, 8) == 4 and chosen.eval_chunk_frames == 0
    for flag, value, message in (
        ("--test-batch-size", "0", "expected a positive int, got '0'"),
        ("--eval-chunk-frames", "-1", "expected an int >= 0 (0 = off), got '-1'"),
    ):
        with pytest.raises(SystemExit):
            get_args_parser().parse_args([flag, value])
        assert f"argument {flag}: {message}" in capsys.readouterr().err


def test_evaluate_in_chunks_gives_the_crop_averaged_logits_of_one_pass_per_view():
    """TSN's multi-view test (crops folded into the batch, logits averaged over the crops)
    on tiny streams: in chunks or not, 3 videos or 1 per batch, the same video logits as
    each view classified on its own."""
    from attnvideo.data import GroupNormalize
    from attnvideo.models import create_stacnn

    videos, crops, t, size = 3, 3, 4, 64
    gen = torch.Generator().manual_seed(0)
    rgb, flow = (torch.randint(0, 256, (videos, crops, t, c, size, size), dtype=torch.uint8,
                               generator=gen) for c in (3, 2))  # fmt: skip
    labels = torch.tensor([0, 2, 1])
    normalize = GroupNormalize(mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.4))

    def batches(n: int) -> list[dict]:
        return [{"rgb": rgb[i : i + n], "flow": flow[i : i + n], "label": labels[i : i + n],
                 "video_index": torch.arange(i, min(i + n, videos))}
                for i in range(0, videos, n)]  # fmt: skip

    frames: list[int] = []  # frames per backbone call
    torch.manual_seed(0)
    for stream in ("rgb", "flow"):
        model = create_stacnn("test_resnet", 5, num_segments=2, modality=stream, new_length=1)
        with torch.no_grad():
            model.consensus.fc2.weight.normal_(0, 0.1)  # temporal weights other than 1 / T
        model.eval()
        model.backbone.register_forward_pre_hook(lambda _, a: frames.append(len(a[0])))
        images = normalize({"rgb": rgb, "flow": flow})
        with torch.inference_mode():
            views = [[model(images[stream][v, c, None],
                            motion=images["flow"][v, c, None] if stream == "rgb" else None).logits
                      for c in range(crops)] for v in range(videos)]  # fmt: skip
        reference = torch.stack([torch.cat(v).mean(0) for v in views]).double()
        for per_batch, chunk, most in ((3, 0, 36), (3, 5, 5), (1, 64, 12), (1, 7, 7)):
            frames.clear()
            scores = evaluate(model, batches(per_batch), CPU, stream=stream,
                              num_videos=videos, num_classes=5, normalize=normalize,
                              chunk_frames=chunk or None)  # fmt: skip
            assert max(frames) == most and sum(frames) == videos * crops * t
            torch.testing.assert_close(scores["video_logits"], reference, rtol=1e-5, atol=1e-5)
            assert scores["video_labels"].tolist() == labels.tolist()


def test_eval_shards_cover_every_item_once():
    for n in (0, 1, 7, 10):
        for world in (1, 2, 3):
            seen = sorted(i for r in range(world) for i in ShardSampler(n, r, world))
            assert seen == list(range(n))


def test_two_ranks_see_the_same_global_batches_as_one_process():
    data = list(range(20))
    one = ResumableDistributedSampler(data, num_replicas=1, rank=0, seed=3, drop_last=True)
    two = [
        ResumableDistributedSampler(data, num_replicas=2, rank=r, seed=3, drop_last=True)
        for r in range(2)
    ]
    for s in (one, *two):
        s.set_epoch(1)
    full = [i for e, i in one]
    parts = [[i for e, i in s] for s in two]
    assert {e for e, i in one} == {1}
    batch = 4  # global; 2 per rank
    for step in range(5):
        glob = set(full[step * batch : (step + 1) * batch])
        ranks = set(parts[0][step * 2 : step * 2 + 2]) | set(parts[1][step * 2 : step * 2 + 2])
        assert glob == ranks
    one.set_start(8)
    assert [i for e, i in one] == full[8:] and len(one) == 12


def test_seeded_samples_depend_only_on_seed_epoch_index():
    class Draw(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return (torch.rand(()).item(), random.random(), float(np.random.rand()))

    ds = SeededSamples(Draw(), seed=5)
    a = [ds[0, i] for i in range(4)]
    torch.manual_seed(123)
    before = torch.get_rng_state()
    assert [ds[0, i] for i in reversed(range(4))][::-1] == a  # any order, any global state
    assert torch.equal(torch.get_rng_state(), before)  # caller's RNG untouched
    assert [ds[1, i] for i in range(4)] != a  # another epoch
    assert len({x[0] for x in a}) == 4


def test_rng_state_survives_a_weights_only_roundtrip(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    state = rng_state()
    torch.save(state, tmp_path / "s.pt")
    expected = (random.random(), float(np.random.rand()), torch.rand(3))
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    set_rng_state(torch.load(tmp_path / "s.pt", weights_only=True))
    got = (random.random(), float(np.random.rand()), torch.rand(3))
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])


def test_a_checkpoint_is_not_continued_with_other_settings(tmp_path):
    from attnvideo.engine.checkpoints import load_checkpoint, save_checkpoint

    def parts():
        model = torch.nn.Linear(2, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 1.0)
        return model, opt, sched, torch.amp.GradScaler("cpu", enabled=False)

    settings = {"seed": 0, "stream": {"lr": 0.1, "epochs": 2}}
    save_checkpoint(tmp_path / "a", *parts(), {"epoch": 1, "step": 0}, CPU, settings)
    assert load_checkpoint(tmp_path / "a", *parts(), CPU, settings) == {"epoch": 1, "step": 0}
    other = {"seed": 0, "stream": {"lr": 0.5, "epochs": 2}}
    with pytest.raises(ValueError, match=r"^resume: .*\(stream: .*0\.1.* -> .*0\.5.*--output-dir"):
        load_checkpoint(tmp_path / "a", *parts(), CPU, other)
    assert (tmp_path / "a" / "latest.json").is_file()  # the checkpoint is kept
    # A checkpoint saved without its settings (older versions) is restored as before.
    save_checkpoint(tmp_path / "b", *parts(), {"epoch": 1, "step": 3}, CPU)
    assert load_checkpoint(tmp_path / "b", *parts(), CPU, other) == {"epoch": 1, "step": 3}


def test_presets_fill_the_paper_recipe_and_flags_override():
    a = parse("--preset", "ucf101", "--data-root", "x", "--annotations", "y")
    assert a.dataset == "ucf101" and a.num_segments == 3 and a.test_segments == 25
    assert a.test_crops == 10 and a.batch_size == 128 and a.opt == "sgd"
    assert a.rgb.lr == 0.001 and a.flow.lr == 0.005
    assert a.weight_decay == 5e-4 and a.partial_bn is True and a.pretrained is True
    assert {"pretrained", "partial_bn"} <= set(a.from_preset)
    b = parse("--preset", "hmdb51", "--lr", "0.01", "--num-segments", "5")
    assert b.rgb.lr == b.flow.lr == 0.01 and b.num_segments == 5
    assert parse("--ablation").runs == ("tsn", "tsn+ta", "tsn+sa", "stacnn")
    assert parse().runs == ("tsn", "stacnn") and parse().flip is False
    assert parse("--no-spatial-attention").runs == ("tsn+ta",)
    assert parse("--no-temporal-attention", "--no-spatial-attention").runs == ("tsn",)
    assert parse("--modality", "rgb").streams == ("rgb",)
    with pytest.raises(ValueError, match="unknown run"):
        parse("--runs", "tsn,bogus")
    # every preset value can be turned off (or on) from the command line
    off = parse("--dataset", "ucf101", "--data-root", "x", "--no-pretrained", "--no-partial-bn")
    assert off.pretrained is False and off.partial_bn is False
    assert "pretrained" not in off.from_preset
    on = parse("--pretrained", "--partial-bn")
    assert on.pretrained is True and on.partial_bn is True and on.backbone == "test_resnet"
    # A preset's recipe on other data: the given dataset wins over the preset's.
    small = parse("--preset", "synthetic", "--dataset", "list", "--data-root", "x",
                  "--annotations", "a.txt,b.txt")  # fmt: skip
    assert small.dataset == "list" and small.backbone == "test_resnet" and small.ta_from_tsn
    assert parse("--preset", "hmdb51").dataset == "hmdb51" and parse().dataset == "synthetic"
    local = parse("--dataset", "ucf101", "--data-root", "x", "--pretrained-file", "w.pth")
    assert local.pretrained is True and local.pretrained_file == Path("w.pth")
    with pytest.raises(ValueError, match="pretrained_file"):
        parse("--pretrained-file", "w.pth", "--no-pretrained")


def test_lr_warm_up_is_per_stream_and_old_run_folders_still_load():
    from attnvideo.engine import TrainConfig
    from attnvideo.engine.config import StreamSpec
    from attnvideo.engine.trainer import _signature, make_scheduler

    cfg = parse()  # the synthetic preset warms up the RGB streams only
    assert (cfg.rgb.lr_warmup_epochs, cfg.flow.lr_warmup_epochs) == (2.0, 0.0)
    assert cfg.stream_recipe(StreamSpec.of("stacnn", "flow")).lr_warmup_epochs == 0.0
    ucf = parse("--preset", "ucf101", "--data-root", "x", "--annotations", "y")
    assert (ucf.rgb.lr_warmup_epochs, ucf.flow.lr_warmup_epochs) == (0.0, 0.0)
    both = parse("--lr-warmup-epochs", "1")
    assert (both.rgb.lr_warmup_epochs, both.flow.lr_warmup_epochs) == (1.0, 1.0)
    flow = parse("--flow-lr-warmup-epochs", "3")
    assert (flow.rgb.lr_warmup_epochs, flow.flow.lr_warmup_epochs) == (2.0, 3.0)
    for flag, name in (("--lr-warmup-epochs", "lr_warmup"), ("--flow-lr-warmup-epochs", "flow")):
        with pytest.raises(ValueError, match=f"^{name}.*>= 0, got -1.0"):
            parse(flag, "-1")
    # The schedule: linear over the stream's warm-up steps, then the cosine.
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_scheduler(opt, cfg, cfg.rgb, iters_per_epoch=4)  # 8 warm-up steps of 60
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    cosine = [0.5 * (1 + math.cos(math.pi * i / 60)) for i in range(10)]
    expected = [min(1.0, (i + 1) / 8) * c for i, c in enumerate(cosine)]
    assert lrs == pytest.approx(expected)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    make_scheduler(opt, cfg, cfg.flow, iters_per_epoch=4)
    assert opt.param_groups[0]["lr"] == 1.0  # no warm-up: the first step at the full rate
    # Streams trained when the warm-up was one value for both (a top-level signature key,
    # not in "stream") keep their signature, so finished ones are reused.
    sig = _signature(cfg, StreamSpec.of("tsn", "flow"))
    assert sig["lr_warmup_epochs"] == 0.0 and "lr_warmup_epochs" not in sig["stream"]
    assert _signature(cfg, StreamSpec.of("tsn", "rgb"))["lr_warmup_epochs"] == 2.0
    # A config.json of that time: one top-level value, read into both streams.
    old = cfg.to_dict()
    for stream in ("rgb", "flow"):
        del old[stream]["lr_warmup_epochs"]
    old["lr_warmup_epochs"] = 0.5
    back = TrainConfig.from_dict(old)
    assert (back.rgb.lr_warmup_epochs, back.flow.lr_warmup_epochs) == (0.5, 0.5)


def test_preset_workers_are_capped_at_the_usable_cpus(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert parse("--preset", "ucf101", "--data-root", "x", "--annotations", "y").workers == 2
    given = parse("--preset", "ucf101", "--data-root", "x", "--annotations", "y", "--workers", "8")
    assert given.workers == 8  # what the user asks for is kept


def test_config_is_frozen_and_round_trips_through_json(tmp_path):
    cfg = parse("--dataset", "list", "--data-root", str(tmp_path / "v"), "--annotations",
                "a.txt,b.txt", "--classes", "c.txt", "--frame-size", "340x256")  # fmt: skip
    assert cfg.frame_size == (340, 256) and cfg.classes_file == Path("c.txt")
    assert cfg.flow_root == tmp_path / "v-flow-340x256"  # flow at another size: its own folder
    with pytest.raises(AttributeError):
        cfg.seed = 3  # type: ignore[misc]
    from attnvideo.engine import TrainConfig

    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert parse("--short-side", "256").flow_root.name == "flow-dis-s256"
    with pytest.raises(SystemExit):
        get_args_parser().parse_args(["--short-side", "256", "--frame-size", "340x256"])


def test_launchers_torchrun_and_slurm():
    assert launcher_ranks({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}) == (
        1, 2, 1, "torchrun")  # fmt: skip
    slurm = {"SLURM_STEP_ID": "0", "SLURM_PROCID": "3", "SLURM_STEP_NUM_TASKS": "4",
             "SLURM_LOCALID": "1", "MASTER_ADDR": "node1", "MASTER_PORT": "29500"}  # fmt: skip
    assert launcher_ranks(slurm) == (3, 4, 1, "slurm")
    # a batch script itself (no srun step) is one process, whatever SLURM_NTASKS says
    assert launcher_ranks({"SLURM_PROCID": "0", "SLURM_NTASKS": "4"}) == (0, 1, 0, "none")
    del slurm["MASTER_PORT"]
    with pytest.raises(ValueError, match="MASTER_PORT"):
        launcher_ranks(slurm)


def test_missing_dataset_stops_with_the_place_looked_in(tmp_path):
    missing = tmp_path / "UCF-101"
    flags = ["--dataset", "ucf101", "--data-root", str(missing), "--output-dir",
             str(tmp_path / "out")]  # fmt: skip
    with pytest.raises(FileNotFoundError, match=r"dataset not found.*UCF-101.*does not exist"):
        train(parse(*flags, "--annotations", "a"))
    missing.mkdir()
    with pytest.raises(FileNotFoundError, match=r"annotations not found.*nosplits"):
        train(parse(*flags, "--annotations", str(tmp_path / "nosplits")))
    assert not (tmp_path / "out").exists()


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def test_pretrained_offline_stops_at_once_naming_flags_the_user_can_give(tmp_path, offline_hub):
    common = ["--backbone", "resnet18.a1_in1k", "--output-dir", str(tmp_path / "out")]
    asked = parse(*common, "--pretrained", "--data-root", str(tmp_path / "never-made"))
    with pytest.raises(OfflineError, match=r"no cached weights.*resnet18.*hub") as err:
        train(asked)
    assert "without --pretrained" in str(err.value) and "--pretrained-file" in str(err.value)
    assert not (tmp_path / "never-made").exists()  # stopped before making any data
    videos, splits = tmp_path / "UCF-101", tmp_path / "splits"
    videos.mkdir()
    splits.mkdir()
    preset = parse(*common, "--dataset", "ucf101", "--data-root", str(videos),
                   "--annotations", str(splits))  # fmt: skip
    with pytest.raises(OfflineError) as err:
        train(preset)
    message = str(err.value)
    assert "ucf101 recipe" in message and "--no-pretrained" in message
    assert "drop --pretrained" not in message and "without --pretrained" not in message
    # the command line turns it into a message and exit status 2, no traceback
    from attnvideo.train import main

    assert main([*common, "--dataset", "ucf101", "--data-root", str(videos),
                 "--annotations", str(splits)]) == 2  # fmt: skip


# ------------------------------------------------------------- end-to-end (tiny)
TINY = [
    "--synthetic-classes",
    "3",
    "--synthetic-test-videos-per-class",
    "0",
    "--ta-epochs",
    "1",
    "--synthetic-frames",
    "8",
    "--synthetic-size",
    "32",
    "--synthetic-videos-per-class",
    "5",
    "--backbone",
    "test_resnet",
    "--input-size",
    "32",
    "--resize",
    "32",
    "--num-segments",
    "2",
    "--test-segments",
    "2",
    "--new-length",
    "1",
    "--batch-size",
    "4",
    "--workers",
    "0",
    "--figures",
    "1",
    "--save-every",
    "1",
]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """A tiny synthetic dataset (3 classes x 5 clips, 32x32, 8 frames) and its flow."""
    from attnvideo.data.flow import precompute_flow
    from attnvideo.data.synthetic import make_synthetic_actions

    root = tmp_path_factory.mktemp("synthetic") / "data"
    info = make_synthetic_actions(
        root, num_classes=3, videos_per_class=5, num_frames=8, size=(32, 32), seed=0, workers=0
    )
    # The exact store (.npy) too, which test_predict_... compares prediction with.
    precompute_flow(info.video_root, root / "flow-dis", workers=0, progress=False, store="npy")
    return root


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    env.pop("ATTNVIDEO_CRASH_AFTER_STEPS", None)
    return env


def _run(args: list[str], env=None, check=True, torchrun: int = 0):
    prefix = [sys.executable]
    if torchrun:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        prefix += [
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={torchrun}",
            "--master_addr=127.0.0.1",
            f"--master_port={port}",
        ]
    proc = subprocess.run(
        [*prefix, str(SCRIPT), *args],
        env=env or _env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


@pytest.mark.slow
def test_end_to_end_tiny_run_writes_metrics_log_checkpoints_figures(tiny_data, tmp_path):
    out = tmp_path / "run"
    torch.set_num_threads(1)
    metrics = train(
        parse(*TINY, "--data-root", str(tiny_data), "--epochs", "1", "--output-dir", str(out))
    )
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert list(saved) == ["tsn", "stacnn"]
    for run in saved.values():
        assert list(run) == ["rgb", "flow", "fused"]
        for m in run.values():
            assert {"top1", "top5", "mean_class_accuracy"} <= set(m)
            assert m["num_videos"] == 6  # 3 classes x 2 test clips (groups 1 and 2)
            assert 0 <= m["top1"] <= m["top5"] <= 100
            # top-1 of 6 videos is a multiple of 1/6
            assert round(m["top1"] * 6 / 100, 6) == round(m["top1"] * 6 / 100)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in log if "epoch" in r]
    assert sorted(r["job"] for r in epochs) == ["flow-avg", "flow-ta", "rgb-stacnn", "rgb-tsn"]
    assert all(r["corrupt_videos"] == 0 and np.isfinite(r["train_loss"]) for r in epochs)
    assert [r["run"] for r in log if "test" in r] == ["tsn", "stacnn"]
    for job in ("rgb-tsn", "rgb-stacnn", "flow-avg", "flow-ta"):
        weights = load_file(str(out / job / "final.safetensors"))
        assert weights and all(torch.isfinite(w).all() for w in weights.values())
        assert not list((out / job).glob("state-*"))  # mid-run checkpoints cleaned up
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert figures == [
        f"{r}-v_MoveRight_g01_c01.{e}" for r in ("stacnn", "tsn") for e in ("gif", "png")
    ]
    # The video scores behind the metrics, to fuse with other weights.
    scores = load_file(str(out / "scores.safetensors"))
    predictions = json.loads((out / "predictions.json").read_text())
    assert sorted(scores) == sorted(
        ["labels"] + [f"{r}/{s}" for r in ("tsn", "stacnn") for s in ("rgb", "flow", "fused")]
    )
    assert scores["labels"].tolist() == predictions["labels"]
    assert scores["labels"].dtype == torch.int64  # as the file's layout metadata says
    for run in ("tsn", "stacnn"):
        rgb, flow = scores[f"{run}/rgb"], scores[f"{run}/flow"]
        assert rgb.shape == (6, 3) and rgb.dtype == torch.float64  # as the metrics saw them
        assert torch.equal(scores[f"{run}/fused"], fuse_streams(rgb, flow, (1.0, 1.5)))
        for stream in ("rgb", "flow", "fused"):
            top = scores[f"{run}/{stream}"].argmax(1)
            assert top.tolist() == predictions[run][stream]
            correct = (top == scores["labels"]).sum().item()
            assert 100 * correct / 6 == pytest.approx(saved[run][stream]["top1"])
    config = json.loads((out / "config.json").read_text())
    assert config["rgb"]["epochs"] == config["flow"]["epochs"] == 1
    # --eval-only reproduces the metrics from the saved weights
    again = train(parse(*TINY, "--data-root", str(tiny_data), "--epochs", "1",
                        "--output-dir", str(out), "--eval-only", "--figures", "0"))  # fmt: skip
    assert again == metrics


@pytest.mark.slow
def test_segment_analysis_agrees_with_the_run_it_reads(tiny_data, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "segment_analysis", ROOT / "examples" / "segment_analysis.py"
    )
    analysis = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(analysis)
    out = tmp_path / "run"
    flags = [*TINY, "--data-root", str(tiny_data), "--epochs", "1", "--output-dir", str(out)]
    torch.set_num_threads(1)
    metrics = train(parse(*[*flags, "--figures", "0"]))
    results = analysis.main(flags)
    assert json.loads((out / "segments.json").read_text()) == json.loads(json.dumps(results))
    assert sorted(results) == ["flow-avg", "flow-ta", "rgb-stacnn", "rgb-tsn"]
    for run, stream, key in [
        ("tsn", "rgb", "rgb-tsn"),
        ("tsn", "flow", "flow-avg"),
        ("stacnn", "rgb", "rgb-stacnn"),
        ("stacnn", "flow", "flow-ta"),
    ]:
        r = results[key]
        # its own consensus, clip by clip, is what the training script evaluated
        assert r["learned"] == pytest.approx(metrics[run][stream]["top1"])
        assert all(0 <= r[k] <= 100 for k in ("average", "oracle", "learned"))
        assert 0 <= r["weight_on_action"] <= 1 and 0 < r["uniform_share"] <= 1
    for key in ("rgb-tsn", "flow-avg"):  # average consensus: uniform weights
        assert results[key]["learned"] == results[key]["average"]
        assert results[key]["weight_on_action"] == pytest.approx(results[key]["uniform_share"])


@pytest.mark.slow
def test_ddp_two_processes_match_one_process(tiny_data, tmp_path):
    # LayerNorm backbone and no dropout: per-rank batch statistics and per-rank dropout
    # masks are the only things that may legitimately differ between the two set-ups.
    # SGD, not AdamW: AdamW turns round-off-sized gradients (e.g. of the bias before the
    # softmax over segments, exactly 0 in exact arithmetic) into lr-sized steps.
    common = [
        *TINY,
        "--data-root",
        str(tiny_data),
        "--epochs",
        "2",
        "--backbone",
        "test_convnext",
        "--dropout",
        "0",
        "--opt",
        "sgd",
        "--lr",
        "0.05",
        "--runs",
        "stacnn",
        "--save-every",
        "0",
    ]
    _run([*common, "--output-dir", str(tmp_path / "one")])
    _run([*common, "--output-dir", str(tmp_path / "two")], torchrun=2)
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert one == two
    # The flow stream has no batch norm at all: the weights agree to round-off.
    a = load_file(str(tmp_path / "one" / "flow-ta" / "final.safetensors"))
    b = load_file(str(tmp_path / "two" / "flow-ta" / "final.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=lambda m, k=k: f"{k}: {m}")
    # The RGB stream's spatial attention has a BatchNorm, whose batch statistics are
    # per process under DDP (no SyncBatchNorm on CPU): its running statistics differ,
    # everything else stays close.
    a = load_file(str(tmp_path / "one" / "rgb-stacnn" / "final.safetensors"))
    b = load_file(str(tmp_path / "two" / "rgb-stacnn" / "final.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        if "running_" in k or "num_batches" in k:
            continue
        torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=1e-3, msg=lambda m, k=k: f"{k}: {m}")


@pytest.mark.slow
def test_killed_mid_epoch_then_resumed_ends_exactly_like_an_uninterrupted_run(tiny_data, tmp_path):
    common = [
        *TINY,
        "--data-root",
        str(tiny_data),
        "--epochs",
        "2",
        "--modality",
        "rgb",
        "--save-every",
        "2",
        "--batch-size",
        "2",
    ]
    _run([*common, "--output-dir", str(tmp_path / "ref")])
    # 9 training clips / batch 2 = 4 steps per epoch, 8 per job: rgb-tsn then rgb-stacnn.
    # Step 15 is the second job's epoch 2, step 3: one step after a mid-epoch checkpoint.
    env = dict(_env(), ATTNVIDEO_CRASH_AFTER_STEPS="15")
    crashed = _run([*common, "--output-dir", str(tmp_path / "cut")], env=env, check=False)
    assert crashed.returncode == -9, crashed.stderr[-2000:]
    assert (tmp_path / "cut" / "rgb-tsn" / "done.json").is_file()
    assert (tmp_path / "cut" / "rgb-stacnn" / "latest.json").is_file()
    assert not (tmp_path / "cut" / "metrics.json").exists()
    resumed = _run([*common, "--output-dir", str(tmp_path / "cut"), "--resume"])
    assert "rgb-stacnn: resuming at epoch 2, step 2" in resumed.stdout
    ref = json.loads((tmp_path / "ref" / "metrics.json").read_text())
    cut = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert cut == ref
    for job in ("rgb-tsn", "rgb-stacnn"):
        a = load_file(str(tmp_path / "ref" / job / "final.safetensors"))
        b = load_file(str(tmp_path / "cut" / job / "final.safetensors"))
        for k in a:
            assert torch.equal(a[k], b[k]), f"{job}: {k} differs after resume"


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_data, tmp_path):
    out = tmp_path / "nan"
    cfg = parse(*TINY, "--data-root", str(tiny_data), "--epochs", "3", "--runs", "tsn",
                "--modality", "flow", "--opt", "sgd", "--lr", "1e30", "--clip-grad", "0",
                "--output-dir", str(out))  # fmt: skip
    with pytest.raises(NonFiniteLoss, match=r"loss is (nan|inf).*last good checkpoint"):
        train(cfg)
    pointer = json.loads((out / "flow-avg" / "latest.json").read_text())
    assert (pointer["epoch"], pointer["step"]) >= (0, 1)
    state = torch.load(out / "flow-avg" / pointer["state"], weights_only=True)
    assert state["progress"] == {"epoch": pointer["epoch"], "step": pointer["step"]}
    assert not (out / "metrics.json").exists()


@pytest.mark.slow
def test_bf16_autocast_channels_last_and_compile_train_and_evaluate(tiny_data, tmp_path):
    out = tmp_path / "fast-flags"
    torch.set_num_threads(1)
    args = [*TINY, "--data-root", str(tiny_data), "--epochs", "1", "--output-dir", str(out)]
    args += ["--amp", "bf16", "--channels-last", "--compile", "--modality", "rgb"]
    metrics = train(parse(*args))
    assert list(metrics) == ["tsn", "stacnn"]
    for run in metrics.values():
        m = run["rgb"]
        assert m["num_videos"] == 6
        assert 0 <= m["top1"] <= m["top5"] <= 100
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [rec["train_loss"] for rec in logged if "train_loss" in rec]
    assert losses, "no training epoch was logged"
    assert all(math.isfinite(loss) for loss in losses)


@pytest.mark.slow
def test_predict_classifies_videos_as_the_training_run_evaluated_them(tiny_data, tmp_path, capsys):
    from attnvideo.predict import main as predict_main

    out = tmp_path / "run"
    flags = [*TINY, "--data-root", str(tiny_data), "--epochs", "1", "--runs", "stacnn",
             "--output-dir", str(out)]  # fmt: skip
    torch.set_num_threads(1)
    metrics = train(parse(*flags, "--figures", "0"))
    capsys.readouterr()  # the training's output
    classes = (tiny_data / "splits" / "classInd.txt").read_text().split()[1::2]
    test_list = (tiny_data / "splits" / "testlist01.txt").read_text()
    test = [line.split()[0] for line in test_list.splitlines()]
    videos = [tiny_data / "videos" / rel for rel in test]
    # The run folder describes itself: moved elsewhere, it still classifies.
    moved = tmp_path / "elsewhere" / "my-run"
    moved.parent.mkdir()
    out.rename(moved)
    figures = tmp_path / "figures"
    cache = tmp_path / "cache"
    argv = [str(moved), *map(str, videos), "--top-k", "3", "--figures-dir", str(figures),
            "--flow-cache", str(cache)]  # fmt: skip
    assert predict_main(argv) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["video"] for r in results] == [str(v) for v in videos]
    correct = 0
    for r, rel in zip(results, test, strict=True):
        assert [name for name, _ in r["top"]] and all(n in classes for n, _ in r["top"])
        probs = [p for _, p in r["top"]]
        assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1, abs=1e-3)
        for stream in ("rgb", "flow"):
            assert len(r["temporal_weights"][stream]) == 2  # --test-segments 2
            assert sum(r["temporal_weights"][stream]) == pytest.approx(1, abs=1e-3)
        correct += r["top"][0][0] == rel.split("/")[0]
        stem = Path(rel).stem
        assert r["figures"] == [
            str(figures / f"stacnn-{stem}.png"),
            str(figures / f"stacnn-{stem}.gif"),
        ]
        assert all(Path(f).stat().st_size > 0 for f in r["figures"])
    assert len(list(cache.iterdir())) == len(videos)  # one flow cache file per video
    # Same sampling, crops, normalisation and fusion as the run's own evaluation: the
    # run's accuracy, and the fused logits of its evaluation code, video by video.
    assert 100.0 * correct / len(test) == pytest.approx(metrics["stacnn"]["fused"]["top1"])
    predictor = Predictor.from_run(moved)
    cached = Predictor.from_run(moved, flow_cache=cache)
    predictions = [predictor.predict(v) for v in videos]
    for video, p in zip(videos, predictions, strict=True):
        torch.testing.assert_close(cached.predict(video).logits, p.logits)
    # Prediction computes flow exactly; training read the compressed .flow store (a
    # quantisation step or two off): the evaluation below reads the exact .npy store.
    for lossy in (tiny_data / "flow-dis").rglob("*.flow"):
        lossy.unlink()
    cfg = parse(*flags)
    info = load_run(moved)
    assert info.classes == tuple(classes) and info.fusion_weights == (1.0, 1.5)
    fused = 0
    for stream, weight in (("rgb", 1.0), ("flow", 1.5)):
        model = info.streams_of("stacnn")[stream].load()
        spec = info.streams_of("stacnn")[stream].spec
        ds = build_dataset(cfg, spec, False, model.data_config)
        assert [r.path for r in ds.records] == test
        scores = evaluate(model, test_loader(ds, cfg, CPU), CPU, stream=stream,
                          num_videos=len(test), num_classes=len(classes),
                          normalize=ds.normalize, chunk_frames=64)  # fmt: skip
        fused = fused + weight * scores["video_logits"]
    torch.testing.assert_close(torch.stack([p.logits for p in predictions]), fused)

    bad = tmp_path / "corrupt.avi"
    bad.write_bytes(b"\x00" * 4096)
    assert predict_main([str(moved), str(bad), str(videos[0])]) == 1
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1  # the readable video is still classified
    assert f"{bad}: cannot read the video" in captured.err
    assert predict_main([str(moved), str(tmp_path / "missing.avi")]) == 1
    assert "no such video file" in capsys.readouterr().err
    assert predict_main([str(moved), str(videos[0]), "--run", "tsn"]) == 2
    assert "expected one of ['stacnn']" in capsys.readouterr().err
    assert predict_main([str(tmp_path), str(videos[0])]) == 2
    assert "run.json: no such file" in capsys.readouterr().err


@pytest.mark.slow
def test_predict_flow_cache_is_keyed_by_the_video_not_its_name(tiny_data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    train(parse(*TINY, "--data-root", str(tiny_data), "--epochs", "1", "--runs", "stacnn",
                "--modality", "flow", "--figures", "0", "--output-dir", str(out)))  # fmt: skip
    videos = sorted((tiny_data / "videos").rglob("*.avi"))
    a, b = tmp_path / "a" / "clip.avi", tmp_path / "b" / "clip.avi"
    for src, dst in ((videos[0], a), (videos[-1], b)):
        dst.parent.mkdir()
        dst.write_bytes(src.read_bytes())
    plain = Predictor.from_run(out)
    cached = Predictor.from_run(out, flow_cache=tmp_path / "cache")
    for video in (a, b, a, b):
        torch.testing.assert_close(cached.predict(video).logits, plain.predict(video).logits)
    assert len(list((tmp_path / "cache").iterdir())) == 2
    b.write_bytes(videos[1].read_bytes())  # same path, new content: not the old flow
    torch.testing.assert_close(cached.predict(b).logits, plain.predict(b).logits)
    # A container that misstates its frame count, or states none: the same frames.
    from attnvideo.engine import predictor as module

    stated = module._stated_frames
    expected = plain.predict(a).logits
    for error in (-3, 2, None):

        def wrong(path, error=error):
            count, width, height = stated(path)
            return (0 if error is None else count + error), width, height

        monkeypatch.setattr(module, "_stated_frames", wrong)
        torch.testing.assert_close(plain.predict(a).logits, expected)


@pytest.mark.slow
def test_frames_decoded_resized_in_training_and_in_prediction(tiny_data, tmp_path):
    """--short-side: the datasets decode resized frames and compute flow at that size (in
    their own flow folder), run.json records it, and prediction decodes at that size."""
    from attnvideo.data.flow import precompute_flow

    flow_root = tiny_data / "flow-dis-s24"
    assert parse("--data-root", str(tiny_data), "--short-side", "24").flow_root == flow_root
    # the exact store, which the comparison below reads (training reads the .flow store)
    precompute_flow(tiny_data / "videos", flow_root, workers=0, progress=False, store="npy",
                    short_side=24)  # fmt: skip
    out = tmp_path / "run"
    flags = [*TINY, "--data-root", str(tiny_data), "--epochs", "1", "--runs", "stacnn",
             "--short-side", "24", "--input-size", "16", "--resize", "24", "--figures", "0",
             "--output-dir", str(out)]  # fmt: skip
    train(parse(*flags))
    info = load_run(out)
    assert info.frames["short_side"] == 24 and info.flow["short_side"] == 24
    assert json.loads((out / "config.json").read_text())["short_side"] == 24
    for lossy in flow_root.rglob("*.flow"):
        lossy.unlink()
    cfg = parse(*flags)
    predictor = Predictor(info)
    videos = [tiny_data / "videos" / r.path for r in build_dataset(
        cfg, info.streams["rgb-stacnn"].spec, False, {"mean": (0,) * 3, "std": (1,) * 3}
    ).records]  # fmt: skip
    samples = predictor.read_inputs(videos[0])
    assert samples["rgb"]["rgb"].shape[-2:] == (24, 24)  # 32x32 videos decoded at 24
    fused = 0
    for stream, weight in (("rgb", 1.0), ("flow", 1.5)):
        model = predictor.models[stream]
        ds = build_dataset(cfg, info.streams_of()[stream].spec, False, model.data_config)
        scores = evaluate(model, test_loader(ds, cfg, CPU), CPU, stream=stream,
                          num_videos=len(videos), num_classes=3, normalize=ds.normalize,
                          chunk_frames=64)  # fmt: skip
        fused = fused + weight * scores["video_logits"]
    predicted = torch.stack([predictor.predict(v).logits for v in videos])
    torch.testing.assert_close(predicted, fused)


@pytest.mark.slow
def test_pretrained_file_trains_offline_from_a_local_timm_checkpoint(tiny_data, tmp_path,
                                                                     offline_hub):  # fmt: skip
    import timm

    torch.manual_seed(1)
    backbone = timm.create_model("test_resnet")
    conv = backbone.conv1[0].weight.detach().clone()
    weights = tmp_path / "test_resnet.pth"
    torch.save(backbone.state_dict(), weights)
    out = tmp_path / "run"
    cfg = parse(*TINY, "--data-root", str(tiny_data), "--epochs", "1", "--runs", "tsn",
                "--modality", "flow", "--lr", "0", "--figures", "0", "--pretrained-file",
                str(weights), "--output-dir", str(out))  # fmt: skip
    assert cfg.pretrained is True
    train(cfg)
    done = json.loads((out / "flow-avg" / "done.json").read_text())
    assert done["config"]["pretrained_file"] == str(weights)
    # lr 0: the trained first convolution is TSN's cross-modality init of the file's
    first = load_file(str(out / "flow-avg" / "final.safetensors"))["backbone.model.conv1.0.weight"]
    torch.testing.assert_close(first, conv.mean(1, keepdim=True).expand_as(first))


def test_init_weights_starts_temporal_attention_from_a_tsn_stream(tmp_path):
    from safetensors.torch import save_file

    from attnvideo import create_stacnn

    torch.manual_seed(0)
    kw = {"num_segments": 2, "modality": "flow", "new_length": 1, "spatial_attention": False}
    tsn = create_stacnn("test_resnet", 3, temporal_attention=False, **kw).eval()
    path = tmp_path / "tsn.safetensors"
    save_file({k: v.contiguous() for k, v in tsn.state_dict().items()}, str(path))
    ta = create_stacnn("test_resnet", 3, temporal_attention=True, **kw).eval()
    loaded, kept = init_weights(ta, path)
    assert loaded == len(tsn.state_dict())
    assert kept and all(k.startswith("consensus.") for k in kept)
    x = torch.randn(2, 2, 2, 32, 32)
    # the attention starts as TSN's average consensus: the same scores as the TSN stream
    torch.testing.assert_close(ta(x).logits, tsn(x).logits)
    other = create_stacnn("test_resnet", 5, temporal_attention=True, **kw)
    _, kept = init_weights(other, path)
    assert {"fc.weight", "fc.bias"} <= set(kept)  # another number of classes: left as is
    with pytest.raises(FileNotFoundError, match="does not exist"):
        init_weights(ta, tmp_path / "missing.safetensors")
    save_file({"unrelated": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match=r"no tensor of .* matches the model"):
        init_weights(ta, tmp_path / "other.safetensors")


def test_a_plain_timm_checkpoint_starts_either_stream_with_tsn_cross_modality_init(tmp_path):
    import timm

    from attnvideo.engine import ModelSpec

    torch.manual_seed(0)
    backbone = timm.create_model("test_resnet")
    conv = backbone.conv1[0].weight.detach().clone()  # (C, 3, k, k)
    pth = tmp_path / "test_resnet.pth"
    torch.save(backbone.state_dict(), pth)
    for modality, length in (("rgb", 5), ("flow", 5)):
        spec = ModelSpec("test_resnet", 4, modality, 2, length, True, False, 0.5, None, False)
        model = spec.build()
        loaded, kept = init_weights(model, pth)
        first = model.backbone.model.conv1[0].weight.detach()
        expected = conv if modality == "rgb" else conv.mean(1, keepdim=True).expand_as(first)
        torch.testing.assert_close(first, expected)
        assert "fc.weight" in kept and loaded > 10  # the classifier is new
        # --pretrained-file: timm's pretrained_cfg_overlay, then the same TSN rule
        from_file = spec.build(pretrained_file=str(pth))
        torch.testing.assert_close(from_file.backbone.model.conv1[0].weight.detach(), expected)


@pytest.mark.slow
def test_init_flow_is_printed_and_part_of_the_stream_signature(tiny_data, tmp_path):
    common = [*TINY, "--data-root", str(tiny_data), "--epochs", "1", "--modality", "flow",
              "--figures", "0"]  # fmt: skip
    _run([*common, "--runs", "tsn", "--output-dir", str(tmp_path / "tsn")])
    weights = tmp_path / "tsn" / "flow-avg" / "final.safetensors"
    out = tmp_path / "ta"
    warm = [*common, "--runs", "stacnn", "--init-flow", str(weights), "--output-dir", str(out),
            "--no-ta-from-tsn"]  # fmt: skip
    proc = _run(warm)
    assert f"flow-ta: {len(load_file(str(weights)))} tensors from {weights}; kept" in proc.stdout
    config = json.loads((out / "flow-ta" / "done.json").read_text())["config"]
    assert config["init"] == str(weights.resolve())
    again = _run(warm)  # the same flags reuse the finished stream
    assert "flow-ta: trained already" in again.stdout


@pytest.mark.slow
def test_ta_from_tsn_starts_the_attention_stream_from_the_runs_own_tsn_flow(tiny_data, tmp_path):
    common = [*TINY, "--data-root", str(tiny_data), "--epochs", "1", "--modality", "flow",
              "--figures", "0", "--ta-from-tsn", "--ta-epochs", "2",
              "--ta-lr", "0.002"]  # fmt: skip
    out = tmp_path / "run"
    proc = _run([*common, "--runs", "stacnn", "--output-dir", str(out)])
    # flow-avg is trained first although no run reports it, then flow-ta starts from it.
    source = out / "flow-avg" / "final.safetensors"
    assert source.is_file()
    n = len(load_file(str(source)))
    # ... all but the attention (whose last layer starts at zero: TSN's average).
    assert f"flow-ta: {n} tensors from {source}; kept their initialisation: consensus." in (
        proc.stdout
    )
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    ta = [r for r in log if r.get("job") == "flow-ta"]
    assert [r["epoch"] for r in ta] == [1, 2]  # --ta-epochs, not --epochs
    done = json.loads((out / "flow-ta" / "done.json").read_text())["config"]
    assert done["stream"]["epochs"] == 2 and done["stream"]["lr"] == 0.002
    assert done["warm_start"] == json.loads((out / "flow-avg" / "done.json").read_text())["config"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == ["stacnn"]  # flow-avg trained as a dependency, not reported
    m = metrics["stacnn"]["flow"]
    assert m["correct"] == round(m["top1"] * m["num_videos"] / 100)
    assert m["top1_wilson95"][0] <= m["top1"] <= m["top1_wilson95"][1]
    predictions = json.loads((out / "predictions.json").read_text())
    assert len(predictions["stacnn"]["flow"]) == len(predictions["labels"]) == m["num_videos"]
    assert "6 test videos (one = 16.67 points)" in proc.stdout
    assert "95% interval of top-1 from the test set's size alone (Wilson): stacnn flow [" in (
        proc.stdout
    )
    again = _run([*common, "--runs", "tsn,stacnn,tsn+sa", "--output-dir", str(out)])
    assert "flow-avg: trained already" in again.stdout
    assert "flow-ta: trained already" in again.stdout
    # tsn and tsn+sa share their flow stream: its scores are saved under both names.
    scores = load_file(str(out / "scores.safetensors"))
    assert torch.equal(scores["tsn/flow"], scores["tsn+sa/flow"])
    assert not torch.equal(scores["tsn/flow"], scores["stacnn/flow"])
    # A finished attention stream does not need its source: --eval-only without flow-avg.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copytree(out / "flow-ta", alone / "flow-ta")
    evaluated = _run([*common, "--runs", "stacnn", "--output-dir", str(alone), "--eval-only"])
    assert "flow-avg" not in evaluated.stdout and not (alone / "flow-avg").exists()
    assert json.loads((alone / "metrics.json").read_text()) == metrics
    # Another warm-start setting retrains the attention stream only.
    other = _run([*common, "--runs", "stacnn", "--output-dir", str(out), "--resume",
                  "--ta-epochs", "1"])  # fmt: skip
    assert "flow-avg: trained already" in other.stdout
    assert "flow-ta: trained already" not in other.stdout
