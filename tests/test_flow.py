"""Optical flow: accuracy on known motion, quantisation, the stores, precompute, shards, CLI."""

from __future__ import annotations

import json
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
    missing_flow,
    precompute_flow,
    read_video,
    save_flow,
)
from attnvideo.data.flow_cache import FlowFolder, open_flow
from attnvideo.data.flow_store import FlowStore
from attnvideo.data.shards import Shard
from attnvideo.data.synthetic import SyntheticConfig, make_synthetic_actions, render_action
from attnvideo.data.tempfiles import host_id, temp_path
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
    assert got == tmp_path / "f" / "A" / "v.flow"
    assert flow_cache_path("A/v.mp4", tmp_path, "f", "npy") == Path("f/A/v.npy")
    assert flow_cache_path("A/v.1.mp4", tmp_path, "f", "frames") == Path("f/A/v.1")
    with pytest.raises(ValueError, match=r"video: .* outside the video root"):
        flow_cache_path("../other/v.avi", tmp_path / "videos", tmp_path / "f")
    with pytest.raises(ValueError, match=r"store: expected one of \['flow', 'npy', 'frames'\]"):
        flow_cache_path("A/v.mp4", tmp_path, "f", "zip")


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
    report = precompute_flow(dataset, tmp_path, workers=workers, progress=False, store="npy")
    videos = _videos(dataset)
    assert report.computed == videos and not report.skipped and not report.failed
    for rel in videos:
        q = np.load(flow_cache_path(rel, dataset, tmp_path, "npy"))
        expected = flow_mod._quantize(compute_flow(read_video(dataset / rel)))
        np.testing.assert_array_equal(q, expected)


def _dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_precompute_resumes_skips_done_and_cleans_abandoned_temporaries(dataset, tmp_path):
    videos = _videos(dataset)
    done, half, *_ = videos
    # A finished file from an earlier run: kept as it is (its content is a marker).
    marker = np.full((5, 2, 32, 48), 3, np.uint8)
    save_flow(flow_cache_path(done, dataset, tmp_path, "npy"), marker)
    # A killed run on this host left a temporary for the second video: not done, removed.
    final = flow_cache_path(half, dataset, tmp_path, "npy")
    stray = final.with_name(f".{final.name}.{_dead_pid()}@{host_id()}.0123456789ab.tmp")
    stray.write_bytes(b"\x93NUMPY half-written")

    report = precompute_flow(dataset, tmp_path, workers=0, progress=False, store="npy")
    assert report.skipped == [done]
    assert report.computed == [v for v in videos if v != done]
    assert report.removed_tmp == [stray.relative_to(tmp_path).as_posix()]
    assert not stray.exists() and final.is_file()
    np.testing.assert_array_equal(np.load(flow_cache_path(done, dataset, tmp_path, "npy")), marker)
    again = precompute_flow(dataset, tmp_path, workers=0, progress=False, store="npy")
    assert again.skipped == videos and not again.computed


def test_temporaries_of_other_hosts_and_live_processes_are_left_alone(dataset, tmp_path):
    # On a shared file system a temporary may be another node's file in flight: only a
    # temporary made on this host by a process that no longer exists may be removed.
    folder = flow_cache_path(_videos(dataset)[0], dataset, tmp_path).parent
    folder.mkdir(parents=True)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        kept = {
            "another host": f".v.flow.{_dead_pid()}@node-elsewhere-1.0123456789ab.tmp",
            "a live process": f".v.flow.{live.pid}@{host_id()}.0123456789ab.tmp",
            "this process": temp_path(folder / "v.flow").name,
            "no owner named": ".v.flow.0123456789ab.tmp",
        }
        for name in kept.values():
            (folder / name).write_bytes(b"in flight")
        past = time.time() - 3600
        for path in folder.iterdir():
            os.utime(path, (past, past))  # old, too: age proves nothing
        report = precompute_flow(dataset, tmp_path, workers=0, progress=False, shard="0/4")
        live.kill()
    assert not report.removed_tmp
    assert sorted(p.name for p in folder.glob(".*")) == sorted(kept.values())


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
    assert not list((tmp_path / "flow" / "A").glob("bad*"))


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
    listed = (videos[0], videos[-1])
    assert sorted(p.relative_to(tmp_path / "flow") for p in (tmp_path / "flow").rglob("*.*")) == [
        Path(v).with_suffix(".flow") for v in listed
    ]
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
    done = flow_cache_path(videos[0], dataset, tmp_path, "frames")
    done.mkdir(parents=True)
    (done / "img_00001.jpg").write_text("kept")
    stray = temp_path(done.with_name("v_gone"))
    stray = stray.with_name(stray.name.replace(f".{os.getpid()}@", f".{_dead_pid()}@"))
    stray.mkdir()
    (stray / "img_00001.jpg").write_bytes(b"partial")
    assert main([str(dataset), str(tmp_path), "--frame-dirs", "--quiet", "--workers", "0"]) == 0
    assert not stray.exists() and (done / "img_00001.jpg").read_text() == "kept"
    for rel in videos[1:]:
        folder = flow_cache_path(rel, dataset, tmp_path, "frames")
        assert len(list(folder.glob("img_*.jpg"))) == len(read_video(dataset / rel))
    again = precompute_flow(dataset, tmp_path, frame_dirs=True, workers=0, progress=False)
    assert again.skipped == videos
    with pytest.raises(ValueError, match="store: frame_dirs=True writes TSN frame folders"):
        precompute_flow(dataset, tmp_path, frame_dirs=True, store="npy", progress=False)


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
    stored = open_flow(tmp_path / "f" / "w.flow")
    assert stored.shape == (71, 2, 64, 112)
    assert stored.meta["frame_size"] == [112, 64] and stored.meta["source_size"] == [560, 240]
    assert stored.meta["method"] == "dis" and stored.meta["preset"] == "medium"
    folder = export_frame_folder(video, tmp_path / "frames", size=(112, 64), rgb=False)
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 2 * 71 and not any(n.startswith("img_") for n in names)
    with pytest.raises(SystemExit):
        flow_mod.main([str(videos), str(tmp_path / "g"), "--size", "112by64"])


# --------------------------------------------------------------------------- stores


def test_default_store_is_one_compressed_file_per_video_close_to_the_exact_flow(dataset, tmp_path):
    report = precompute_flow(dataset, tmp_path / "f", workers=0, progress=False)
    videos = _videos(dataset)
    assert report.computed == videos
    stored = sorted(p.relative_to(tmp_path / "f") for p in (tmp_path / "f").rglob("*.flow"))
    assert [p.with_suffix(".avi").as_posix() for p in stored] == videos
    for rel in videos:
        stored = open_flow(flow_cache_path(rel, dataset, tmp_path / "f"))
        exact = flow_mod._quantize(compute_flow(read_video(dataset / rel)))
        assert isinstance(stored, FlowStore) and stored.shape == exact.shape
        error = np.abs(np.asarray(stored).astype(int) - exact).mean()  # JPEG q93, in levels
        assert error < 0.5
        assert stored.meta == {
            "method": "dis", "preset": "medium", "size": None, "short_side": None,
            "source_size": [48, 32], "video": Path(rel).name, "frame_size": [48, 32],
        }  # fmt: skip


def test_every_store_is_read_and_what_exists_is_preferred(dataset, tmp_path, monkeypatch):
    video = dataset / _videos(dataset)[0]
    exact = flow_mod._quantize(compute_flow(read_video(video)))
    stems = {store: tmp_path / store / "v" for store in ("flow", "npy", "frames")}
    made = {
        "flow": load_or_compute_flow(video, stems["flow"].with_suffix(".flow"), codec="png"),
        "npy": load_or_compute_flow(video, stems["npy"].with_suffix(".npy")),
        "frames": load_or_compute_flow(video, stems["frames"]),  # a flow-only folder
    }
    assert isinstance(made["flow"], FlowStore) and isinstance(made["npy"], np.memmap)
    assert isinstance(made["frames"], FlowFolder)
    assert sorted(p.name for p in stems["frames"].iterdir())[0] == "flow_x_00001.jpg"
    assert not list(stems["frames"].glob("img_*"))
    snippet = [3, 1, 2, 2]
    np.testing.assert_array_equal(made["flow"][snippet], exact[snippet])  # PNG: exact
    np.testing.assert_array_equal(made["npy"][snippet], exact[snippet])
    assert np.abs(made["frames"][snippet].astype(int) - exact[snippet]).mean() < 0.5
    # Asked for any store, each folder's existing one is read: nothing is computed.
    monkeypatch.setattr(flow_mod, "iter_flow", lambda *a, **k: pytest.fail("recomputed"))
    for store, stem in stems.items():
        for asked in (stem.with_suffix(".flow"), stem.with_suffix(".npy"), stem):
            got = load_or_compute_flow(video, asked)
            assert type(got) is type(made[store]) and got.shape == exact.shape
    # With several, the one asked for first, then .flow, .npy, frames.
    save_flow(stems["flow"].with_suffix(".npy"), exact)
    assert isinstance(load_or_compute_flow(video, stems["flow"].with_suffix(".npy")), np.memmap)
    assert isinstance(load_or_compute_flow(video, stems["flow"]), FlowStore)


def test_reading_a_snippet_decodes_only_its_fields(dataset, tmp_path, monkeypatch):
    video = dataset / _videos(dataset)[0]
    store = load_or_compute_flow(video, tmp_path / "v.flow")
    decoded = []
    real = FlowStore._decode
    monkeypatch.setattr(FlowStore, "_decode", lambda s, b, i: decoded.append(i) or real(s, b, i))
    store[[1, 2, 3]]
    assert decoded == [1, 2, 3]


# --------------------------------------------------------------------------- shards, check


def test_shards_split_the_sorted_list_and_bad_values_name_the_flag(tmp_path, capsys):
    names = [f"c{i}/v{i}.avi" for i in range(7)][::-1]
    parts = [Shard(i, 3).select(names) for i in range(3)]
    assert sorted(v for p in parts for v in p) == sorted(names)
    assert [len(p) for p in parts] == [3, 2, 2]
    for bad in ("2/2", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(SystemExit):
            main([str(tmp_path), str(tmp_path / "f"), "--shard", bad])
        assert "argument --shard" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"shard: expected I/N"):
        precompute_flow(tmp_path, tmp_path / "f", shard="3/3", progress=False)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "5"}, Shard(4, 5)),
        ({"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "2",
          "SLURM_ARRAY_TASK_STEP": "2"}, Shard(2, 3)),  # --array=2-6:2
        ({"RANK": "1", "WORLD_SIZE": "2", "SLURM_ARRAY_TASK_ID": "0",
          "SLURM_ARRAY_TASK_COUNT": "1"}, Shard(0, 1)),  # SLURM first
        ({"RANK": "1", "WORLD_SIZE": "2"}, Shard(1, 2)),
        ({"SLURM_PROCID": "3", "SLURM_NTASKS": "4", "RANK": "0", "WORLD_SIZE": "1"}, Shard(0, 1)),
        ({"SLURM_PROCID": "3", "SLURM_NTASKS": "4"}, Shard(3, 4)),  # srun -n 4
        ({"SLURM_PROCID": "0"}, None),
        ({}, None),
    ],
)  # fmt: skip
def test_shard_from_the_environment(env, expected):
    got = Shard.from_env(env)
    assert (got and got[0]) == expected


def test_a_bad_shard_from_the_environment_is_an_error_naming_it(dataset, tmp_path, capsys):
    with pytest.raises(ValueError, match="SLURM_ARRAY_TASK_ID=5 of SLURM_ARRAY_TASK_COUNT=3"):
        Shard.from_env({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "3"})
    with pytest.raises(ValueError, match=r"from RANK=2 of WORLD_SIZE=2"):
        Shard.from_env({"RANK": "2", "WORLD_SIZE": "2"})
    os.environ.update(RANK="2", WORLD_SIZE="2")
    try:
        assert main([str(dataset), str(tmp_path), "--quiet"]) == 2
    finally:
        del os.environ["RANK"], os.environ["WORLD_SIZE"]
    assert "RANK=2 of WORLD_SIZE=2" in capsys.readouterr().err


_SHARD_RUN = """
import json, sys
from attnvideo.data.flow import precompute_flow
r = precompute_flow(sys.argv[1], sys.argv[2], shard=sys.argv[3], workers=0, progress=False)
print(json.dumps({"computed": r.computed, "skipped": r.skipped, "failed": r.failed}))
"""


@pytest.mark.slow  # two fresh interpreters import torch
def test_two_shards_at_once_into_one_folder_process_every_video_once(dataset, tmp_path):
    out = tmp_path / "flow"
    env = {**os.environ, "PYTHONPATH": str(Path(flow_mod.__file__).parents[2])}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", _SHARD_RUN, str(dataset), str(out), f"{i}/2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    reports = []
    for run in runs:
        stdout, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
        reports.append(json.loads(stdout.splitlines()[-1]))
    computed = [v for r in reports for v in r["computed"]]
    videos = _videos(dataset)
    assert sorted(computed) == videos and len(computed) == len(set(computed))
    assert all(r["computed"] and not r["failed"] and not r["skipped"] for r in reports)
    assert missing_flow(dataset, out) == []
    assert sorted(p.name for p in out.rglob(".*")) == []  # no temporary left
    assert main([str(dataset), str(out), "--check"]) == 0


def test_check_lists_missing_and_invalid_outputs(dataset, tmp_path, capsys):
    videos = _videos(dataset)
    out = tmp_path / "flow"
    assert main([str(dataset), str(out), "--quiet", "--workers", "0", "--shard", "0/2"]) == 0
    assert missing_flow(dataset, out, shard="0/2") == []
    assert [v for v, _ in missing_flow(dataset, out)] == Shard(1, 2).select(videos)
    capsys.readouterr()
    assert main([str(dataset), str(out), "--check"]) == 1
    printed = capsys.readouterr().out
    assert f"{len(videos) - len(Shard(1, 2).select(videos))} of {len(videos)} videos" in printed
    assert all(f"missing: {v}" in printed for v in Shard(1, 2).select(videos))
    # One flipped byte in a field: the light check (used to skip done work) passes, the
    # deep one (--check) reads every field's checksum and fails.
    first = flow_cache_path(Shard(0, 2).select(videos)[0], dataset, out)
    data = bytearray(first.read_bytes())
    data[100] ^= 0xFF
    first.write_bytes(bytes(data))
    assert missing_flow(dataset, out, shard="0/2", deep=False) == []
    ((video, reason),) = missing_flow(dataset, out, shard="0/2")
    assert first.stem in video and reason.startswith("invalid:") and "checksum" in reason
    assert main([str(dataset), str(out), "--check", "--shard", "0/2"]) == 1


def test_relative_roots_mirror_the_video_tree(dataset, tmp_path, monkeypatch):
    videos = _videos(dataset)
    (tmp_path / "videos").symlink_to(dataset)
    monkeypatch.chdir(tmp_path)
    report = precompute_flow("videos", "flow", videos[:1], workers=0, progress=False)
    assert report.computed == videos[:1]
    assert [p.as_posix() for p in Path("flow").rglob("*.flow")] == [
        "flow/" + videos[0].replace(".avi", ".flow")
    ]


def test_videos_that_would_share_an_output_are_refused_not_overwritten(dataset, tmp_path):
    # a.avi and a.mp4 both map to a.flow: processing both would keep one video's flow
    # under the other's name. Every shard refuses both; the rest is processed.
    root = tmp_path / "videos"
    (root / "A").mkdir(parents=True)
    source = dataset / _videos(dataset)[0]
    for name in ("a.avi", "a.mp4", "b.avi"):
        (root / "A" / name).symlink_to(source)
    reports = [
        precompute_flow(root, tmp_path / "flow", workers=0, progress=False, shard=f"{i}/2")
        for i in range(2)
    ]
    assert sorted(v for r in reports for v in r.computed) == ["A/b.avi"]
    failed = dict(f for r in reports for f in r.failed)
    assert sorted(failed) == ["A/a.avi", "A/a.mp4"]
    assert "A/a.mp4 would share one flow output" in failed["A/a.avi"]
    assert not (tmp_path / "flow" / "A" / "a.flow").exists()
    assert missing_flow(root, tmp_path / "flow") == [
        ("A/a.avi", "conflict: shares its output with A/a.mp4"),
        ("A/a.mp4", "conflict: shares its output with A/a.avi"),
    ]
