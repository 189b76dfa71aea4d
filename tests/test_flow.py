"""Optical flow: accuracy on known motion, quantisation, the atomic cache, precompute, CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from attnvideo.data import flow as flow_mod
from attnvideo.data.flow import (
    compute_flow,
    export_frame_folder,
    flow_cache_path,
    load_or_compute_flow,
    main,
    precompute_flow,
    read_video,
    save_flow,
)
from attnvideo.data.synthetic import SyntheticConfig, make_synthetic_actions, render_action
from attnvideo.data.video import VideoDecodeError
from attnvideo.functional import dequantize_flow

HAS_TVL1 = hasattr(cv2, "optflow")
METHODS = [("dis", p) for p in ("ultrafast", "fast", "medium")] + [("farneback", None)]
if HAS_TVL1:
    METHODS.append(("tvl1", None))


def _texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random grey texture (blobs of ~8 px), so flow is well defined everywhere."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (height // 8 + 2, width // 8 + 2)).astype(np.float32)
    return cv2.resize(small, (width + 16, height + 16), interpolation=cv2.INTER_CUBIC)


def _shifted_pair(dx: int, dy: int, size=(64, 80)) -> np.ndarray:
    """Frames (2, H, W, 3): the second shows the scene moved by (dx, dy) pixels."""
    h, w = size
    big = np.clip(_texture(h, w), 0, 255).astype(np.uint8)
    first = big[8 : 8 + h, 8 : 8 + w]
    second = big[8 - dy : 8 - dy + h, 8 - dx : 8 - dx + w]  # content moves by +dx, +dy
    return np.stack([np.repeat(f[..., None], 3, -1) for f in (first, second)])


def _write_video(path: Path, frames: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 8_000_000
        for img in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A tiny synthetic dataset (2 classes x 2 clips of 6 frames): real .avi files."""
    root = tmp_path_factory.mktemp("synthetic")
    cfg = SyntheticConfig(num_classes=2, videos_per_class=2, num_frames=6, size=(32, 48))
    return make_synthetic_actions(root, cfg, workers=0).video_root


# --------------------------------------------------------------------------- compute


@pytest.mark.parametrize(("method", "preset"), METHODS)
@pytest.mark.parametrize(("dx", "dy"), [(3, -2), (-2, 1)])
def test_translation_has_the_right_sign_and_magnitude(method, preset, dx, dy):
    frames = _shifted_pair(dx, dy)
    flow = compute_flow(frames, method, preset=preset)
    assert flow.shape == (1, 2, 64, 80) and flow.dtype == np.float32
    inner = flow[0, :, 12:-12, 12:-12]  # away from the borders, where content enters
    np.testing.assert_allclose(np.median(inner[0]), dx, atol=0.25)
    np.testing.assert_allclose(np.median(inner[1]), dy, atol=0.25)


def test_grayscale_input_matches_rgb():
    frames = _shifted_pair(2, 1)
    np.testing.assert_array_equal(compute_flow(frames), compute_flow(frames[..., 0]))


@pytest.mark.parametrize(("method", "preset"), METHODS)
def test_flow_on_synthetic_actions_beats_zero_flow(method, preset):
    """Flow recovers the generator's true motion: error well below that of 'no motion'."""
    clip = render_action(0, SyntheticConfig(num_frames=8, size=(64, 64), noise=0.0))
    flow = compute_flow(clip.frames, method, preset=preset)
    moving = np.hypot(*np.moveaxis(clip.flow, 1, 0)) > 0.5
    epe = np.hypot(*np.moveaxis(flow - clip.flow, 1, 0))[moving].mean()
    zero = np.hypot(*np.moveaxis(clip.flow, 1, 0))[moving].mean()
    assert epe < 0.5 * zero


def test_single_frame_gives_no_field():
    assert compute_flow(np.zeros((1, 8, 8, 3), np.uint8)).shape == (0, 2, 8, 8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"frames": np.zeros((2, 8, 8, 3), np.float32)}, "frames: expected a uint8"),
        ({"frames": np.zeros((2, 8, 8, 4), np.uint8)}, r"frames: .*\(2, 8, 8, 4\)"),
        ({"frames": np.zeros((8, 8), np.uint8)}, r"frames: .*\(8, 8\)"),
        ({"method": "lucas"}, "method: expected one of"),
        ({"method": "farneback", "preset": "fast"}, "preset: only method='dis'"),
        ({"preset": "slow"}, "preset: expected one of"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    kwargs = {"frames": np.zeros((2, 8, 8, 3), np.uint8), **kwargs}
    with pytest.raises(ValueError, match=match):
        compute_flow(**kwargs)


def test_tvl1_without_contrib_names_the_package(monkeypatch):
    monkeypatch.delattr(cv2, "optflow", raising=False)
    frames = _shifted_pair(1, 1)
    with pytest.raises(ImportError, match="opencv-contrib-python-headless"):
        compute_flow(frames, "tvl1")
    with pytest.raises(ImportError, match="opencv-contrib-python-headless"):
        precompute_flow(".", "/nonexistent", method="tvl1", progress=False)


# --------------------------------------------------------------------------- quantisation


@given(st.lists(st.floats(-40, 40, width=32), min_size=1, max_size=64))
def test_quantisation_round_trip_is_within_half_a_step(values):
    flow = np.asarray(values, np.float32).reshape(1, 1, 1, -1).repeat(2, 1)
    back = dequantize_flow(torch.from_numpy(flow_mod._quantize(flow))).numpy()
    step = 40.0 / 255.0
    assert np.all(np.abs(back - np.clip(flow, -20, 20)) <= step / 2 + 1e-5)


def test_cached_flow_is_the_quantised_computed_flow(tmp_path):
    frames = _shifted_pair(3, -2)
    _write_video(tmp_path / "v.avi", frames)
    cached = load_or_compute_flow(tmp_path / "v.avi", tmp_path / "flow" / "v.npy")
    expected = compute_flow(read_video(tmp_path / "v.avi"))
    back = dequantize_flow(torch.from_numpy(np.array(cached))).numpy()
    assert isinstance(cached, np.memmap) and cached.dtype == np.uint8
    assert np.all(np.abs(back - np.clip(expected, -20, 20)) <= 20.0 / 255.0 + 1e-5)


# --------------------------------------------------------------------------- cache


def test_cache_is_reused_without_recomputing(tmp_path, monkeypatch):
    _write_video(tmp_path / "v.avi", _shifted_pair(2, 0))
    calls = []
    real = flow_mod.iter_flow
    monkeypatch.setattr(flow_mod, "iter_flow", lambda *a, **k: calls.append(1) or real(*a, **k))
    cache = tmp_path / "flow" / "v.npy"
    first = np.array(load_or_compute_flow(tmp_path / "v.avi", cache))
    mtime = cache.stat().st_mtime_ns
    second = load_or_compute_flow(tmp_path / "v.avi", cache)
    assert len(calls) == 1
    assert cache.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(first, second)
    assert sorted(p.name for p in cache.parent.iterdir()) == ["v.npy"]  # no temporary left


def test_corrupt_cache_is_recomputed(tmp_path):
    _write_video(tmp_path / "v.avi", _shifted_pair(2, 0))
    cache = tmp_path / "v.npy"
    good = np.array(load_or_compute_flow(tmp_path / "v.avi", cache))
    cache.write_bytes(cache.read_bytes()[:100])  # truncated, as by a non-atomic writer
    np.testing.assert_array_equal(load_or_compute_flow(tmp_path / "v.avi", cache), good)


def test_interrupted_write_leaves_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "v.npy"
    old = np.full((1, 2, 4, 4), 7, np.uint8)
    save_flow(target, old)

    def interrupted():  # one field written, then Ctrl-C while computing the next
        yield np.zeros((2, 4, 4), np.uint8)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        flow_mod._write_npy_fields(target, interrupted(), (3, 2, 4, 4))
    np.testing.assert_array_equal(np.load(target), old)
    assert [p.name for p in tmp_path.iterdir()] == ["v.npy"]
    with pytest.raises(ValueError, match="got 1 fields, expected 3"):  # a short stream
        flow_mod._write_npy_fields(target, iter(np.zeros((1, 2, 4, 4), np.uint8)), (3, 2, 4, 4))
    assert [p.name for p in tmp_path.iterdir()] == ["v.npy"]


def test_save_flow_rejects_wrong_arrays(tmp_path):
    with pytest.raises(ValueError, match="flow: expected a uint8"):
        save_flow(tmp_path / "a.npy", np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"flow: expected shape .*\(1, 3, 4, 4\)"):
        save_flow(tmp_path / "a.npy", np.zeros((1, 3, 4, 4), np.uint8))


def test_cache_path_mirrors_the_video_tree_and_rejects_escapes(tmp_path):
    got = flow_cache_path(tmp_path / "videos" / "A" / "v.avi", tmp_path / "videos", tmp_path / "f")
    assert got == tmp_path / "f" / "A" / "v.npy"
    assert flow_cache_path("A/v.mp4", tmp_path, "f") == Path("f/A/v.npy")
    with pytest.raises(ValueError, match=r"video: .* outside the video root"):
        flow_cache_path("../other/v.avi", tmp_path / "videos", tmp_path / "f")


def test_read_video_reports_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.avi"):
        read_video(tmp_path / "nope.avi")
    (tmp_path / "bad.avi").write_bytes(b"RIFF" + os.urandom(2000))
    with pytest.raises(VideoDecodeError, match=r"bad\.avi"):
        read_video(tmp_path / "bad.avi")


# --------------------------------------------------------------------------- precompute


def _videos(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.avi"))


@pytest.mark.parametrize("workers", [0, 2])
def test_precompute_writes_one_valid_file_per_video(dataset, tmp_path, workers):
    report = precompute_flow(dataset, tmp_path, workers=workers, progress=False)
    videos = _videos(dataset)
    assert report.computed == videos and not report.skipped and not report.failed
    for rel in videos:
        q = np.load(flow_cache_path(rel, dataset, tmp_path))
        expected = flow_mod._quantize(compute_flow(read_video(dataset / rel)))
        np.testing.assert_array_equal(q, expected)


def test_precompute_resumes_skips_done_and_cleans_stray_temporaries(dataset, tmp_path):
    videos = _videos(dataset)
    done, half, *_ = videos
    # A finished file from an earlier run: kept as it is (its content is a marker).
    marker = np.full((5, 2, 32, 48), 3, np.uint8)
    save_flow(flow_cache_path(done, dataset, tmp_path), marker)
    # An interrupted run left only a temporary for the second video: not done, removed.
    final = flow_cache_path(half, dataset, tmp_path)
    stray = final.with_name(f".{final.name}.0123456789ab.tmp")
    stray.write_bytes(b"\x93NUMPY half-written")
    past = time.time() - 60
    os.utime(stray, (past, past))

    report = precompute_flow(dataset, tmp_path, workers=0, progress=False)
    assert report.skipped == [done]
    assert report.computed == [v for v in videos if v != done]
    assert report.removed_tmp == [stray.relative_to(tmp_path).as_posix()]
    assert not stray.exists() and final.is_file()
    np.testing.assert_array_equal(np.load(flow_cache_path(done, dataset, tmp_path)), marker)
    again = precompute_flow(dataset, tmp_path, workers=0, progress=False)
    assert again.skipped == videos and not again.computed


def test_precompute_reports_broken_videos_and_goes_on(dataset, tmp_path):
    root = tmp_path / "videos"
    good = _videos(dataset)[0]
    (root / "A").mkdir(parents=True)
    (root / "A" / "good.avi").write_bytes((dataset / good).read_bytes())
    (root / "A" / "bad.avi").write_bytes(b"not a video")
    report = precompute_flow(
        root,
        tmp_path / "flow",
        ["A/good.avi", "A/bad.avi", "A/gone.avi"],
        workers=0,
        progress=False,
    )
    assert report.computed == ["A/good.avi"]
    assert sorted(v for v, _ in report.failed) == ["A/bad.avi", "A/gone.avi"]
    assert not (tmp_path / "flow" / "A" / "bad.npy").exists()


def test_cli_with_list_file(dataset, tmp_path, capsys):
    videos = _videos(dataset)
    listing = tmp_path / "trainlist01.txt"
    listing.write_bytes(f"{videos[0]} 1\r\n{videos[-1]} 2\r\n".encode())
    assert (
        main(
            [
                str(dataset),
                str(tmp_path / "flow"),
                "--list",
                str(listing),
                "--quiet",
                "--method",
                "farneback",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert "2 computed" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "flow").rglob("*.npy")) == sorted(
        Path(v).with_suffix(".npy").name for v in (videos[0], videos[-1])
    )
    assert main([str(tmp_path / "missing"), str(tmp_path / "flow"), "--quiet"]) == 2


@pytest.mark.slow  # a fresh interpreter imports torch: ~3 s idle, 20 s on a loaded machine
def test_module_runs_as_a_program(dataset, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "attnvideo.data.flow", str(dataset), str(tmp_path), "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert f"{len(_videos(dataset))} computed" in out.stdout


# --------------------------------------------------------------------------- frame folders


def test_export_frame_folder_is_tsn_layout(dataset, tmp_path):
    video = dataset / _videos(dataset)[0]
    out = export_frame_folder(video, tmp_path / "frames" / "v")
    frames = read_video(video)
    q = flow_mod._quantize(compute_flow(frames))
    n = len(frames)
    expected = [f"img_{i:05d}.jpg" for i in range(1, n + 1)]
    expected += [f"flow_{c}_{i:05d}.jpg" for c in "xy" for i in range(1, n)]
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    first = cv2.cvtColor(cv2.imread(str(out / "img_00001.jpg")), cv2.COLOR_BGR2RGB)
    error = np.abs(first.astype(int) - frames[0]).mean()  # JPEG error only
    assert error < 8 and error < np.abs(first.astype(int) - frames[0, ..., ::-1]).mean()
    last_x = cv2.imread(str(out / f"flow_x_{n - 1:05d}.jpg"), cv2.IMREAD_GRAYSCALE)
    assert np.abs(last_x.astype(int) - q[n - 2, 0]).mean() < 2
    assert [p.name for p in out.parent.iterdir()] == ["v"]  # no temporary folder left
    with pytest.raises(FileExistsError, match="exists already"):
        export_frame_folder(video, out)


def test_precompute_frame_dirs_resumes_and_cleans(dataset, tmp_path):
    videos = _videos(dataset)
    done = flow_cache_path(videos[0], dataset, tmp_path).with_suffix("")
    done.mkdir(parents=True)
    (done / "marker").write_text("kept")
    stray = done.with_name(".v_gone.0123456789ab.tmp")
    stray.mkdir()
    (stray / "img_00001.jpg").write_bytes(b"partial")
    past = time.time() - 60
    os.utime(stray, (past, past))
    assert main([str(dataset), str(tmp_path), "--frame-dirs", "--quiet", "--workers", "0"]) == 0
    assert not stray.exists() and (done / "marker").read_text() == "kept"
    for rel in videos[1:]:
        folder = flow_cache_path(rel, dataset, tmp_path).with_suffix("")
        assert len(list(folder.glob("img_*.jpg"))) == len(read_video(dataset / rel))
    again = precompute_flow(dataset, tmp_path, frame_dirs=True, workers=0, progress=False)
    assert again.skipped == videos


def test_flow_of_a_real_clip_resized_at_decoding_streams_the_same_flow(tmp_path):
    # Streaming (one field at a time, resized as decoded) equals computing from the whole
    # resized video at once; the command line takes --short-side / --size.
    real = Path(__file__).parent / "data" / "real"
    video = real / "hmdb51_wave__RATRACE_wave_f_nm_np1_fr_goo_37.avi"
    whole = flow_mod._quantize(compute_flow(read_video(video, short_side=96)))
    got = load_or_compute_flow(video, tmp_path / "a.npy", short_side=96)
    assert got.shape == whole.shape == (71, 2, 96, 224)
    np.testing.assert_array_equal(got, whole)
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "w.avi").symlink_to(video)
    assert flow_mod.main([str(videos), str(tmp_path / "f"), "--size", "112x64", "--quiet"]) == 0
    assert np.load(tmp_path / "f" / "w.npy").shape == (71, 2, 64, 112)
    folder = export_frame_folder(video, tmp_path / "frames", size=(112, 64), rgb=False)
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 2 * 71 and not any(n.startswith("img_") for n in names)
    with pytest.raises(SystemExit):
        flow_mod.main([str(videos), str(tmp_path / "g"), "--size", "112by64"])
