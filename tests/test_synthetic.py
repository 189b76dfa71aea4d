"""Synthetic actions: determinism, UCF-101 file formats, true flow, the attention design."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from attnvideo.data.flow import read_video
from attnvideo.data.synthetic import (
    MOTIONS,
    SyntheticConfig,
    make_synthetic_actions,
    render_action,
)

SMALL = SyntheticConfig(num_classes=3, videos_per_class=9, num_frames=8, size=(32, 48), seed=3)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return make_synthetic_actions(tmp_path_factory.mktemp("syn"), SMALL, workers=2)


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------- files


def test_layout_and_counts(small):
    videos = sorted(p.relative_to(small.video_root).as_posix() for p in small.video_root.rglob("*"))
    videos = [v for v in videos if v.endswith(".avi")]
    assert len(videos) == small.num_videos == 27
    for rel in videos:
        cls, name = rel.split("/")
        assert re.fullmatch(rf"v_{cls}_g\d\d_c\d\d\.avi", name)
        assert (small.gt_flow_root / rel).with_suffix(".npy").is_file()
    assert small.classes == list(MOTIONS[:3])


def test_split_files_are_byte_exact_ucf101(small):
    classes = small.classes
    expected_ind = "".join(f"{i + 1} {c}\r\n" for i, c in enumerate(classes)).encode()
    assert (small.split_root / "classInd.txt").read_bytes() == expected_ind
    videos = sorted(
        p.relative_to(small.video_root).as_posix() for p in small.video_root.rglob("*.avi")
    )
    for k in (1, 2, 3):
        train = (small.split_root / f"trainlist0{k}.txt").read_bytes().decode()
        test = (small.split_root / f"testlist0{k}.txt").read_bytes().decode()
        assert train.endswith("\r\n") and test.endswith("\r\n")
        assert "\n" not in train.replace("\r\n", "") and "\n" not in test.replace("\r\n", "")
        train_lines = train.split("\r\n")[:-1]
        test_lines = test.split("\r\n")[:-1]
        tested = range(7 * (k - 1) + 1, 7 * k + 1)
        for line in train_lines:
            path, label = line.split(" ")
            cls = path.split("/")[0]
            assert int(label) == classes.index(cls) + 1  # 1-based
            assert int(re.search(r"_g(\d\d)_", path)[1]) not in tested
        for path in test_lines:
            assert " " not in path
            assert int(re.search(r"_g(\d\d)_", path)[1]) in tested
        listed = [ln.split(" ")[0] for ln in train_lines] + test_lines
        assert sorted(listed) == videos
        # Sorted as UCF-101's lists: by class (label order), then file name.
        for lines in (train_lines, test_lines):
            paths = [ln.split(" ")[0] for ln in lines]
            keys = [(classes.index(p.split("/")[0]), p) for p in paths]
            assert keys == sorted(keys)


def test_each_split_tests_a_ucf_like_fraction():
    cfg = SyntheticConfig(num_classes=2, videos_per_class=30)
    from attnvideo.data.synthetic import _group_clip

    groups = [_group_clip(j)[0] for j in range(cfg.videos_per_class)]
    for k in (1, 2, 3):
        tested = sum(7 * (k - 1) < g <= 7 * k for g in groups)
        assert abs(tested / len(groups) - 7 / 25) < 0.1
    assert len(set(map(_group_clip, range(100)))) == 100  # names never collide


def test_extra_test_clips_size_split_1_only_and_leave_training_unchanged(small, tmp_path):
    # 400 test clips of 10 classes take clips up to index 141 (142 per class generated).
    big = SyntheticConfig(videos_per_class=30, test_videos_per_class=40)
    assert len(big.clip_indices) == 61 and max(big.clip_indices) == 141
    info = make_synthetic_actions(tmp_path / "d", SMALL, test_videos_per_class=5, workers=0)
    splits = {p.name: p.read_bytes() for p in sorted(info.split_root.iterdir())}
    base = {p.name: p.read_bytes() for p in sorted(small.split_root.iterdir())}
    # Every split's training list, and splits 2 and 3 entirely, are those without them.
    others = {k: v for k, v in base.items() if k != "testlist01.txt"}
    assert {k: v for k, v in splits.items() if k != "testlist01.txt"} == others
    test1 = splits["testlist01.txt"].decode().split()
    assert len(test1) == 3 * 5 and set(base["testlist01.txt"].decode().split()) < set(test1)
    assert info.num_videos == len(list(info.video_root.rglob("*.avi"))) == 3 * 9 + 3 * 2
    ann = json.loads(info.annotations.read_text())["videos"]
    extra = {r for r, m in ann.items() if m.get("test_only")}
    assert len(extra) == 6 and all(ann[r]["split1"] == "test" for r in extra)
    old = _files(small.video_root)  # the clips both have are the same bytes
    assert all(_files(info.video_root)[k] == v for k, v in old.items())
    # An older dataset's record (no such field) reads as test_videos_per_class = 0.
    record = json.loads((small.root / "synthetic.json").read_text())
    del record["config"]["test_videos_per_class"]
    copy = tmp_path / "old"
    import shutil

    shutil.copytree(small.root, copy)
    (copy / "synthetic.json").write_text(json.dumps(record))
    assert make_synthetic_actions(copy, SMALL).generated is False


def test_annotations_match_the_split_and_the_true_flow(small):
    ann = json.loads(small.annotations.read_text())
    assert ann["classes"] == small.classes
    test1 = set((small.split_root / "testlist01.txt").read_text().split())
    for rel, meta in ann["videos"].items():
        assert meta["split1"] == ("test" if rel in test1 else "train")
        assert small.classes[meta["label"]] == rel.split("/")[0]
        start, stop = meta["action_window"]
        assert 0 <= start < stop <= SMALL.num_frames


def test_deterministic_by_seed(small, tmp_path):
    again = make_synthetic_actions(tmp_path / "again", SMALL, workers=0)
    ours, theirs = _files(small.root), _files(again.root)
    assert ours.keys() == theirs.keys()
    for name in ours:  # same bytes: videos, true flow, split files, annotations
        assert ours[name] == theirs[name], name
    other = render_action(0, SMALL.__class__(**{**SMALL.__dict__, "seed": 4}))
    assert not np.array_equal(other.frames, render_action(0, SMALL).frames)


def test_idempotent_and_guarded(small):
    before = {p: p.stat().st_mtime_ns for p in small.root.rglob("*") if p.is_file()}
    info = make_synthetic_actions(small.root, SMALL)
    assert info.generated is False
    assert {p: p.stat().st_mtime_ns for p in small.root.rglob("*") if p.is_file()} == before
    with pytest.raises(ValueError, match=r"root: .* another config .*seed"):
        make_synthetic_actions(small.root, SMALL, seed=5)


def test_overwrite_and_resume(tmp_path):
    cfg = SyntheticConfig(num_classes=2, videos_per_class=2, num_frames=6, size=(32, 32))
    info = make_synthetic_actions(tmp_path, cfg, workers=0)
    victim = next(info.video_root.rglob("*.avi"))
    victim.unlink()  # an incomplete dataset is completed, not reused
    assert make_synthetic_actions(tmp_path, cfg, workers=0).generated and victim.is_file()
    info = make_synthetic_actions(tmp_path, cfg, workers=0, overwrite=True, num_frames=7)
    assert info.generated and len(read_video(next(info.video_root.rglob("*.avi")))) == 7
    # A dataset written by an older generator version is regenerated, without overwrite.
    record = json.loads((tmp_path / "synthetic.json").read_text())
    (tmp_path / "synthetic.json").write_text(json.dumps({**record, "format_version": 0}))
    stale = tmp_path / "videos" / "stale.avi"
    stale.write_bytes(b"old")
    assert make_synthetic_actions(tmp_path, info.config, workers=0).generated
    assert not stale.exists()
    assert make_synthetic_actions(tmp_path, info.config, workers=0).generated is False


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"size": (33, 32)}, ValueError, r"size: expected .*even.*\(33, 32\)"),
        ({"num_classes": len(MOTIONS) + 1}, ValueError, "num_classes: expected 2..16"),
        ({"action_fraction": 0.0}, ValueError, "action_fraction"),
        ({"context_cue": 1.5}, ValueError, "context_cue: expected a probability"),
        ({"codec": "vp9"}, ValueError, "codec"),
        ({"colour": "red"}, TypeError, r"unknown config field\(s\) \['colour'\]"),
    ],
)
def test_bad_knobs_name_the_argument(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        make_synthetic_actions(tmp_path, **kwargs)
    assert not (tmp_path / "videos").exists()


# --------------------------------------------------------------------------- true flow


def _warp_residual(frames: np.ndarray, flow: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Mean |frame_i - frame_{i+1}(p + flow)| and |frame_i - frame_{i+1}| over ``mask``."""
    h, w = frames.shape[1:3]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    warped, still = [], []
    for i in range(len(flow)):
        nxt = frames[i + 1].astype(np.float32)
        back = cv2.remap(
            nxt,
            xx + flow[i, 0],
            yy + flow[i, 1],
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        warped.append(np.abs(back - frames[i])[mask[i]])
        still.append(np.abs(nxt - frames[i])[mask[i]])
    return float(np.concatenate(warped).mean()), float(np.concatenate(still).mean())


@pytest.mark.parametrize("camera", [0.0, 1.5])
def test_true_flow_explains_the_decoded_video(tmp_path, camera):
    cfg = SyntheticConfig(
        num_classes=2,
        videos_per_class=1,
        num_frames=10,
        size=(64, 64),
        noise=0.0,
        camera_motion=camera,
    )
    info = make_synthetic_actions(tmp_path, cfg, workers=0)
    for rel in json.loads(info.annotations.read_text())["videos"]:
        # Luma: what flow methods see (the codec's 4:2:0 chroma is coarser by design).
        frames = read_video(info.video_root / rel)
        frames = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
        gt = np.load((info.gt_flow_root / rel).with_suffix(".npy")).astype(np.float32)
        assert gt.shape == (9, 2, 64, 64) and frames.shape == (10, 64, 64)
        moving = np.hypot(gt[:, 0], gt[:, 1]) > 0.5
        # Away from object edges (blended, occluded) and frame borders (content enters).
        kernel = np.ones((3, 3), np.uint8)
        inner = np.stack([cv2.erode(m.astype(np.uint8), kernel) for m in moving]).astype(bool)
        inner[:, :4] = inner[:, -4:] = inner[:, :, :4] = inner[:, :, -4:] = False
        assert inner.sum() > 100
        warped, still = _warp_residual(frames, gt, inner)
        assert warped < 0.5 * still  # a wrong sign or scale would exceed "still"


def test_action_happens_only_in_its_window():
    cfg = SyntheticConfig(num_frames=24, distractors=0, camera_motion=0.0, noise=0.0)
    for label in range(cfg.num_classes):
        clip = render_action(label, cfg, index=label)
        start, stop = clip.action_window
        assert stop - start == round(cfg.action_fraction * cfg.num_frames)
        speed = np.hypot(clip.flow[:, 0], clip.flow[:, 1]).max(axis=(1, 2))
        active = np.flatnonzero(speed > 1e-3)
        assert active.tolist() == list(range(start, stop)), MOTIONS[label]


@pytest.mark.parametrize(
    ("name", "sign_x", "sign_y"),
    [("MoveRight", 1, 0), ("MoveLeft", -1, 0), ("MoveUp", 0, -1), ("MoveDown", 0, 1)],
)
def test_translations_move_the_way_they_are_named(name, sign_x, sign_y):
    cfg = SyntheticConfig(distractors=0, noise=0.0)
    clip = render_action(MOTIONS.index(name), cfg)
    start, stop = clip.action_window
    fx, fy = clip.flow[start:stop, 0], clip.flow[start:stop, 1]
    moving = np.hypot(fx, fy) > 0.1
    assert np.sign(np.round(np.median(fx[moving]), 3)) == sign_x
    assert np.sign(np.round(np.median(fy[moving]), 3)) == sign_y


def test_distractors_move_outside_the_action_window():
    cfg = SyntheticConfig(num_frames=32, distractors=2, noise=0.0)
    moving_segments = []
    for index in range(6):
        clip = render_action(0, cfg, index=index)
        start, stop = clip.action_window
        outside = [i for i in range(len(clip.flow)) if not start <= i < stop]
        speed = np.hypot(clip.flow[outside, 0], clip.flow[outside, 1]).max(axis=(1, 2))
        moving_segments.append(np.mean(speed > 0.5))
    assert np.mean(moving_segments) > 0.5  # most non-action frames carry motion


@pytest.mark.parametrize(("cue", "expected"), [(1.0, "own"), (0.0, "none")])
def test_context_cue_reliability(cue, expected):
    cfg = SyntheticConfig(context_cue=cue, num_frames=8)
    cues = [render_action(label, cfg, index=i).cue_label for label in range(4) for i in range(3)]
    own = [label for label in range(4) for _ in range(3)]
    assert cues == (own if expected == "own" else [-1] * len(own))


def test_context_cue_is_static_and_away_from_the_actor():
    """Swapping only the cue's class changes one static corner patch, far from the actor."""
    cfg = SyntheticConfig(context_cue=1.0, distractors=0, noise=0.0, num_frames=16)
    own = render_action(2, cfg)
    for index in range(20):  # a clip whose cue was drawn from another class
        other = render_action(2, dataclasses.replace(cfg, context_cue=1e-9), index=index)
        if other.cue_label != 2:
            break
    own = render_action(2, cfg, index=index)
    assert own.cue_label == 2 and other.cue_label not in (2, -1)
    changed = np.any(own.frames != other.frames, axis=-1)  # (F, H, W)
    assert np.all(changed == changed[0])  # the same pixels in every frame: static
    ys, xs = np.nonzero(changed[0])
    h, w = cfg.size
    side = round(0.18 * min(h, w))
    assert ys.max() - ys.min() < side and xs.max() - xs.min() < side
    assert min(ys.min(), h - 1 - ys.max()) <= 2 and min(xs.min(), w - 1 - xs.max()) <= 2
    actor = np.hypot(own.flow[:, 0], own.flow[:, 1]).max(axis=0) > 0.1
    assert actor.any() and not (actor & changed[0]).any()


@pytest.mark.parametrize("name", ["MoveRight", "MoveUp", "ZoomOut"])
def test_actor_track_is_where_the_actor_moves(name):
    """The recorded disc (camera included) is exactly the pixels that move with the actor."""
    cfg = SyntheticConfig(
        num_frames=16, distractors=0, context_cue=0.0, noise=0.0, camera_motion=1.0
    )
    clip = render_action(MOTIONS.index(name), cfg, index=3)
    assert clip.actor_track.shape == (16, 3) and clip.cue_box is None
    py, px = np.mgrid[0 : cfg.size[0], 0 : cfg.size[1]]
    start, stop = clip.action_window
    for i in range(start, stop):
        x, y, r = clip.actor_track[i]
        d = np.hypot(px - x, py - y)
        camera = np.median(clip.flow[i], axis=(1, 2))  # the background: all but the actor
        moving = np.hypot(*(clip.flow[i] - camera[:, None, None])) > 1e-4
        assert moving[(d < r - 0.05) & (d > 1)].all() and not moving[d > r + 0.05].any()


def test_cue_box_is_where_the_cue_is_drawn():
    from attnvideo.data.synthetic import _cue_patch

    cfg = SyntheticConfig(num_frames=16, context_cue=1.0, noise=0.0, camera_motion=1.5)
    clip = render_action(4, cfg, index=2)
    boxes = clip.cue_box
    assert boxes.shape == (16, 4) and len({tuple(b) for b in boxes}) > 1  # moves with camera
    side = round(0.18 * min(cfg.size))
    patch = np.clip(np.rint(_cue_patch(clip.cue_label, side)), 0, 255)
    for frame, (x0, y0, x1, y1) in zip(clip.frames, boxes, strict=True):
        assert (x1 - x0, y1 - y0) == (side, side)
        assert np.array_equal(frame[y0:y1, x0:x1], patch)


def test_locate_inverts_the_file_names(small):
    ann = json.loads(small.annotations.read_text())["videos"]
    for rel, meta in ann.items():
        label, index = SMALL.locate(rel)
        clip = render_action(label, SMALL, index=index)
        assert label == meta["label"]
        assert list(clip.action_window) == meta["action_window"]
        assert clip.cue_label == meta["cue_label"]
    with pytest.raises(ValueError, match="path: expected the name of a clip"):
        SMALL.locate("MoveRight/v_MoveRight_g01_c09.avi")  # no 9th clip of group 1


def test_long_clips_and_windows_render_for_every_class():
    """A long action window slows the motion down so that the actor stays in the frame."""
    cfg = SyntheticConfig(
        num_classes=len(MOTIONS),
        num_frames=150,
        size=(32, 32),
        noise=0.0,
        distractors=0,
        action_fraction=0.9,
    )
    for label in range(cfg.num_classes):
        clip = render_action(label, cfg)
        start, stop = clip.action_window
        assert stop - start == round(0.9 * 150)
        moving = np.hypot(clip.flow[:, 0], clip.flow[:, 1]) > 1e-3
        assert moving[start:stop].any(axis=(1, 2)).all(), MOTIONS[label]


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_videos_have_short_keyframe_intervals(tmp_path, codec):
    """Keyframes every 12 frames, so TSN sampling can seek instead of decoding everything."""
    import av

    cfg = SyntheticConfig(num_classes=2, videos_per_class=1, num_frames=30, size=(32, 32))
    info = make_synthetic_actions(tmp_path, cfg, codec=codec, workers=0)
    video = next(info.video_root.rglob("*.avi"))
    with av.open(str(video)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    assert [i for i, p in enumerate(packets) if p.is_keyframe] == [0, 12, 24]
    assert len(read_video(video)) == 30
