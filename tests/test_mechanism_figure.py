"""examples/mechanism_figure.py on a tiny trained run: the figure, the numbers, the rule."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from attnvideo.train import config_from_args, get_args_parser

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# As tests/test_train.py's TINY (3 classes, 32x32, 8 frames, 2 segments), one run.
TINY = [
    "--synthetic-classes", "3", "--synthetic-test-videos-per-class", "0", "--ta-epochs", "1",
    "--synthetic-frames", "8", "--synthetic-size", "32", "--synthetic-videos-per-class", "5",
    "--backbone", "test_resnet", "--input-size", "32", "--resize", "32", "--num-segments", "2",
    "--test-segments", "2", "--new-length", "1", "--batch-size", "4", "--workers", "0",
    "--figures", "0", "--save-every", "1", "--epochs", "1", "--runs", "stacnn",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """A tiny synthetic dataset (3 classes x 5 clips, 32x32, 8 frames) and its flow."""
    from attnvideo.data.flow import precompute_flow
    from attnvideo.data.synthetic import make_synthetic_actions

    root = tmp_path_factory.mktemp("synthetic") / "data"
    info = make_synthetic_actions(
        root, num_classes=3, videos_per_class=5, num_frames=8, size=(32, 32), seed=0, workers=0
    )
    precompute_flow(info.video_root, root / "flow-dis", workers=0, progress=False)
    return root


@pytest.fixture(scope="module")
def figure_module():
    """The example as a module (it finds segment_analysis.py beside itself)."""
    path = EXAMPLES / "mechanism_figure.py"
    spec = importlib.util.spec_from_file_location("mechanism_figure", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_rule_takes_the_first_own_cue_clip_of_each_class(figure_module):
    ann = {"videos": {p: {"cue_label": c} for p, c in
                      [("a", 2), ("b", 0), ("c", 0), ("d", 1), ("e", 2), ("f", 1)]}}  # fmt: skip
    paths, labels = ["a", "b", "c", "d", "e", "f"], [0, 0, 0, 2, 2, 1]
    assert figure_module.choose_clips(paths, labels, ann, classes=3) == [1, 5, 4]
    assert figure_module.choose_clips(paths, labels, ann, classes=2) == [1, 5]


@pytest.mark.slow
def test_mechanism_figure_on_a_tiny_run(tiny_data, tmp_path, figure_module):
    from attnvideo.engine import train

    out = tmp_path / "run"
    flags = [*TINY, "--data-root", str(tiny_data), "--output-dir", str(out)]
    torch.set_num_threads(1)
    metrics = train(config_from_args(get_args_parser().parse_args(flags)))
    png, path = tmp_path / "fig.png", tmp_path / "numbers.json"
    record = figure_module.main([*flags, "--png", str(png), "--clip-classes", "3",
                                 "--json", str(path)])  # fmt: skip
    assert Image.open(png).size[0] > 300
    saved = json.loads(path.read_text())
    assert saved == json.loads(json.dumps(record))

    # The rule, checked against the split file and the annotations.
    ann = json.loads((tiny_data / "annotations.json").read_text())["videos"]
    test_list = (tiny_data / "splits" / "testlist01.txt").read_text().split()
    expected = []
    for label in range(3):
        own = [p for p in test_list if ann[p]["label"] == label and ann[p]["cue_label"] == label]
        expected += own[:1]
    assert [c["path"] for c in saved["chosen"]] == expected
    assert "first clip of testlist01.txt" in saved["rule"]

    everything = saved["all_clips"]
    assert everything["clips"] == len(test_list) and everything["segments"] == 2 * len(test_list)
    # the fused prediction is the run's own (its video top-1)
    assert everything["fused_top1"] == pytest.approx(metrics["stacnn"]["fused"]["top1"])
    keys = ("A_cue", "A_outside_cue", "A_actor", "A_elsewhere", "M_actor", "M_elsewhere", "S_actor")
    for key in keys:
        assert 0 <= everything[key] <= 1, key
    for stream in ("flow", "rgb"):
        shares = everything[stream]
        for key in ("weight_on_action", "uniform_share", "top_segment_on_action"):
            assert 0 <= shares[key] <= 1, key
        assert 0 < shares["uniform_share"] <= 1
        assert sum(shares["mean_weight_by_segment"]) == pytest.approx(1, abs=1e-3)
    for clip in saved["chosen"]:
        assert clip["cue"] == clip["label"]
        assert set(clip["predicted"]) == {"rgb", "flow", "fused"}
        for stream in ("flow", "rgb"):
            assert math.isclose(sum(clip["weights"][stream]), 1.0, abs_tol=1e-3)
        assert 0 <= clip["flow_weight_on_action"] <= 1
        assert len(clip["maps"]["A"]) == 2 and len(clip["frames"]) == 2
