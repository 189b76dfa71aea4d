"""Decoding and datasets on real files: encoded videos, split files, frame folders, flow
caches, and broken videos (truncated, garbage, empty)."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from attnvideo.data import (
    HMDB51,
    UCF101,
    FlowStore,
    FlowStoreWriter,
    GroupNormalize,
    VideoDecodeError,
    VideoList,
    VideoRecord,
    open_flow,
    plan_snippets,
    probe_video,
    read_frames,
    test_transform,
    train_transform,
)
from attnvideo.data import video as video_module
from attnvideo.data.datasets import VideoDataset
from attnvideo.functional import dequantize_flow

H, W = 48, 64
BASE, STEP, CYCLE = 16, 8, 30  # frame i: grey BASE + STEP * (i % CYCLE), a moving bar on top


def frames_for(num_frames: int) -> np.ndarray:
    frames = np.empty((num_frames, H, W, 3), np.uint8)
    for i in range(num_frames):
        frames[i] = BASE + STEP * (i % CYCLE)
        frames[i, 4:12, i % (W - 8) : i % (W - 8) + 8] = 255
    return frames


def encode(path: Path, num_frames: int = 24, codec: str = "mpeg4", **options: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.gop_size = 5
        stream.bit_rate = 4_000_000  # near-lossless, so grey levels identify frames
        stream.options = options
        for img in frames_for(num_frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())
    return path


def decode_all(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def frame_index(rgb01: torch.Tensor) -> list[int]:
    """Recover frame indices from (T, 3, H, W) values in [0, 1] (the grey level below the bar)."""
    level = rgb01[:, :, 20:, :].mean(dim=(1, 2, 3)) * 255
    return [round((v - BASE) / STEP) for v in level.tolist()]


def write_flow_cache(path: Path, num_frames: int) -> np.ndarray:
    """Field i has x = 10 + 7 i and y = 200 (uint8, quantised), shape (F - 1, 2, H, W)."""
    q = np.empty((num_frames - 1, 2, H, W), np.uint8)
    q[:, 0] = (10 + 7 * np.arange(num_frames - 1))[:, None, None]
    q[:, 1] = 200
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, q)
    return q


def field_index(flow: torch.Tensor) -> np.ndarray:
    """(T, 2L, H, W) in [-1, 1] -> (T, L) field indices, via the x channel's level."""
    q = np.rint((flow[:, 0::2, 0, 0].numpy() * 20 + 20) * 255 / 40).astype(int)
    return (q - 10) // 7


ENCODINGS = {
    "mpeg4.avi": ("mpeg4", {}),
    "mpeg4-bframes.avi": ("mpeg4", {"bf": "2"}),
    "h264.avi": ("libx264", {}),
    "h264-open-gop.avi": ("libx264", {"x264-params": "open-gop=1:keyint=6"}),
    "h264.mp4": ("libx264", {}),
    "h264-open-gop.mp4": ("libx264", {"x264-params": "open-gop=1:keyint=6"}),
    "mpeg4-bframes.mp4": ("mpeg4", {"bf": "2"}),
}


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_read_frames_equals_full_decode(tmp_path, name):
    codec, options = ENCODINGS[name]
    path = encode(tmp_path / name, 30, codec, **options)
    full = decode_all(path)
    assert probe_video(path).num_frames == len(full) == 30
    rng = np.random.default_rng(0)
    index_sets = [[i] for i in range(30)] + [[29, 0, 7, 7, 3]]
    index_sets += [rng.choice(30, size=8, replace=False).tolist() for _ in range(5)]
    for indices in index_sets:
        assert np.array_equal(read_frames(path, indices), full[indices]), indices


class CountingAV:
    """Stands in for the ``av`` module and counts the frames the reader decodes."""

    def __init__(self) -> None:
        self.decoded = 0
        self.FFmpegError = av.FFmpegError

    def open(self, *args, **kwargs):
        container = av.open(*args, **kwargs)
        counter = self

        class Wrapped:
            streams = container.streams

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                container.close()

            def close(self):
                container.close()

            def seek(self, *a, **k):
                return container.seek(*a, **k)

            def decode(self, *a, **k):
                for frame in container.decode(*a, **k):
                    counter.decoded += 1
                    yield frame

        return Wrapped()


def test_reader_seeks_instead_of_decoding_everything(tmp_path, monkeypatch):
    path = encode(tmp_path / "long.avi", 120)
    full = decode_all(path)
    probe = probe_video(path)
    assert max(np.diff(probe.keyframes)) <= 5  # gop 5 (the encoder adds scene-cut keyframes)
    counting = CountingAV()
    monkeypatch.setattr(video_module, "_av", lambda: counting)
    wanted = [7, 63, 111]
    got = read_frames(path, wanted)
    assert np.array_equal(got, full[wanted])
    # From the keyframe before each wanted frame to it, and no more.
    runs = [w - max(k for k in probe.keyframes if k <= w) + 1 for w in wanted]
    assert counting.decoded == sum(runs) <= 5 * len(wanted)


@pytest.mark.parametrize("name", ["h264-one-key.avi", "h264-one-key.mp4"])
def test_one_keyframe_video_is_decoded_once_forward(tmp_path, monkeypatch, name):
    # A single keyframe (x264 with a keyframe interval longer than the clip): the wanted
    # frames, in any order, cost one forward pass to the last of them, never a re-decode.
    path = encode(tmp_path / name, 40, "libx264", **{"x264-params": "keyint=250:scenecut=0"})
    full = decode_all(path)
    assert probe_video(path).keyframes == (0,)
    counting = CountingAV()
    monkeypatch.setattr(video_module, "_av", lambda: counting)
    wanted = [33, 2, 17, 2, 25]
    assert np.array_equal(read_frames(path, wanted), full[wanted])
    assert counting.decoded == max(wanted) + 1


def test_read_frames_rejects_out_of_range(tmp_path):
    path = encode(tmp_path / "v.avi", 10)
    with pytest.raises(ValueError, match=r"indices: expected frame indices in \[0, 10\)"):
        read_frames(path, [3, 10])


# ----------------------------------------------------------------------------- datasets


def ucf_dataset_files(root: Path, lengths: dict[str, int]) -> tuple[Path, Path]:
    """Videos root/videos/<Class>/<name>.avi and UCF split files with the given frame counts."""
    videos, splits = root / "videos", root / "splits"
    classes = sorted({name.split("/")[0] for name in lengths})
    splits.mkdir(parents=True)
    (splits / "classInd.txt").write_bytes(
        b"".join(f"{i + 1} {c}\r\n".encode() for i, c in enumerate(classes))
    )
    lines = [f"{n} {classes.index(n.split('/')[0]) + 1}\r\n" for n in lengths]
    (splits / "trainlist01.txt").write_bytes("".join(lines).encode())
    (splits / "testlist01.txt").write_bytes("".join(f"{n}\r\n" for n in lengths).encode())
    for name, num_frames in lengths.items():
        if num_frames:
            encode(videos / name, num_frames)
    return videos, splits


def identity(sample):
    return sample


@pytest.fixture(scope="module")
def ucf(tmp_path_factory):
    root = tmp_path_factory.mktemp("ucf")
    lengths = {
        "Archery/v_Archery_g01_c01.avi": 24,
        "Archery/v_Archery_g02_c01.avi": 18,
        "HandstandPushups/v_HandStandPushups_g01_c01.avi": 30,
        "HandstandPushups/v_HandStandPushups_g02_c01.avi": 6,
    }
    videos, splits = ucf_dataset_files(root, lengths)
    for name, num_frames in lengths.items():
        write_flow_cache((root / "flow" / name).with_suffix(".npy"), num_frames)
    return root, videos, splits, lengths


def test_ucf101_test_mode_reads_the_planned_aligned_frames(ucf):
    root, videos, splits, lengths = ucf
    ds = UCF101(
        videos, splits, train=False, modality="rgb+flow", num_segments=3, new_length=5,
        test_mode=True, transform=identity, flow_root=root / "flow",
    )  # fmt: skip
    assert ds.classes == ["Archery", "HandstandPushups"] and ds.num_classes == 2 and len(ds) == 4
    for i, num_frames in enumerate(lengths.values()):
        sample = ds[i]
        plan = plan_snippets(num_frames, 3, 5, flow=True)
        assert sample["rgb"].shape == (3, 3, H, W) and sample["flow"].shape == (3, 10, H, W)
        assert frame_index(sample["rgb"]) == plan.rgb_frames.tolist()
        assert np.array_equal(field_index(sample["flow"]), plan.flow_fields)
        y = dequantize_flow(torch.full((1,), 200, dtype=torch.uint8)) / 20
        assert torch.allclose(sample["flow"][:, 1::2], y.expand(3, 5, H, W))
        assert sample["label"] == (0 if i < 2 else 1) and sample["video_index"] == i
    assert ds.corrupt_count == 0


def test_train_mode_is_random_within_segments_and_normalised(ucf):
    _, videos, splits, _ = ucf
    ds = UCF101(videos, splits, modality="rgb", num_segments=4, transform=identity)
    seen = set()
    torch.manual_seed(0)
    for _ in range(12):
        idx = frame_index(ds[2]["rgb"])  # 30 frames, 4 segments of 7.5 frames
        assert all((k * 30) // 4 <= v < ((k + 1) * 30) // 4 for k, v in enumerate(idx))
        seen.add(tuple(idx))
    assert len(seen) > 1
    default = UCF101(videos, splits, modality="rgb", num_segments=2, test_mode=True)[0]["rgb"]
    raw = UCF101(videos, splits, num_segments=2, test_mode=True, transform=identity)[0]["rgb"]
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    assert torch.allclose(default, (raw - mean) / std, atol=1e-6)


def test_multi_clip_ten_crop_views(ucf):
    root, videos, splits, lengths = ucf
    ds = UCF101(
        videos, splits, train=False, modality="rgb+flow", num_segments=2, test_mode=True,
        num_clips=3, transform=test_transform(32, resize=40, crops=10), flow_root=root / "flow",
    )  # fmt: skip
    assert len(ds) == 3 * len(lengths)
    items = [ds[i] for i in range(6)]
    assert [s["video_index"] for s in items] == [0, 0, 0, 1, 1, 1]
    assert items[0]["rgb"].shape == (10, 2, 3, 32, 32)
    assert items[0]["flow"].shape == (10, 2, 10, 32, 32)
    assert not torch.equal(items[0]["rgb"], items[1]["rgb"])  # different snippets per clip


def test_dataloader_with_workers_collates(ucf):
    root, videos, splits, _ = ucf
    ds = UCF101(
        videos, splits, modality="flow", num_segments=2, flow_root=root / "flow",
        transform=test_transform(32, resize=40),
    )  # fmt: skip
    batches = list(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2))
    assert [b["flow"].shape for b in batches] == [(2, 2, 10, 32, 32)] * 2
    assert torch.cat([b["video_index"] for b in batches]).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("train", [True, False])
def test_uint8_batches_normalised_afterwards_equal_float_samples(ucf, train):
    # to_float=False hands uint8 over; GroupNormalize on the collated batch (as on a GPU)
    # gives exactly the float dataset's numbers, for the same random crops and flips.
    root, videos, splits, _ = ucf
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    make = train_transform if train else test_transform
    kwargs = {} if train else {"resize": 40, "crops": 3}
    common = dict(
        modality="rgb+flow", num_segments=3, new_length=2, test_mode=not train,
        flow_root=root / "flow",
    )  # fmt: skip
    floats = UCF101(videos, splits, transform=make(32, mean=mean, std=std, **kwargs), **common)
    raw = UCF101(
        videos, splits, transform=make(32, normalize=False, **kwargs), to_float=False, **common
    )
    torch.manual_seed(0)
    expected = torch.utils.data.default_collate([floats[i] for i in range(len(floats))])
    torch.manual_seed(0)
    batch = torch.utils.data.default_collate([raw[i] for i in range(len(raw))])
    assert batch["rgb"].dtype == batch["flow"].dtype == torch.uint8
    got = GroupNormalize(mean, std)(batch)
    assert got["rgb"].dtype == got["flow"].dtype == torch.float32
    for key in ("rgb", "flow", "label", "video_index"):
        assert torch.equal(got[key], expected[key]), key
    assert torch.equal(got["flow"], GroupNormalize()(batch)["flow"])  # flow ignores mean/std
    with pytest.raises(TypeError, match="to_float: expected a bool"):
        UCF101(videos, splits, to_float="no")
    plain = UCF101(videos, splits, num_segments=2, test_mode=True, to_float=False)[0]["rgb"]
    assert plain.dtype == torch.uint8  # no transform given: left as decoded


def test_decoders_use_one_thread(tmp_path, monkeypatch):
    # FFmpeg's default slice threads make a decoder that a forked DataLoader worker inherits
    # (e.g. as uncollected garbage) hang the worker when it frees it: avpriv_slicethread_free
    # waits on threads that do not exist after fork (seen in this suite; reproduced with a
    # libx264 clip decoded from its start, closed, left in a reference cycle, then freed by
    # gc.collect() in a forked child). Our decoders run on the calling thread only.
    from attnvideo.data.flow import read_video

    path = encode(tmp_path / "clip.mp4", 24, codec="libx264")
    opened = []
    real_open = av.open

    def recording_open(*args, **kwargs):
        container = real_open(*args, **kwargs)
        opened.extend(container.streams.video)  # kept: a closed container lists none
        return container

    monkeypatch.setattr(av, "open", recording_open)
    read_frames(path, [3, 9])
    read_video(path)
    decoders = [stream.codec_context for stream in opened]
    assert len(decoders) >= 3  # probe, read_frames, read_video
    assert [d.thread_count for d in decoders] == [1] * len(decoders)


def test_forked_workers_decode_after_the_parent_did(ucf):
    # The parent decodes first (its frame converter exists), then forked workers decode:
    # each must build its own converter and give the parent's frames exactly.
    _, videos, splits, _ = ucf
    ds = UCF101(
        videos, splits, modality="rgb", num_segments=3, test_mode=True,
        transform=test_transform(32, resize=40),
    )  # fmt: skip
    expected = [ds[i]["rgb"] for i in range(len(ds))]
    loader = torch.utils.data.DataLoader(
        ds, batch_size=1, num_workers=2, multiprocessing_context="fork", timeout=120
    )
    got = [batch["rgb"][0] for batch in loader]
    assert len(got) == len(expected)
    assert all(torch.equal(g, e) for g, e in zip(got, expected, strict=True))


def test_flow_cache_computed_on_demand(tmp_path):
    videos, splits = ucf_dataset_files(tmp_path, {"Run/v_Run_g01_c01.avi": 8})
    ds = UCF101(
        videos, splits, modality="flow", num_segments=2, new_length=3,
        flow_root=tmp_path / "flow", transform=identity,
    )  # fmt: skip
    sample = ds[0]
    (cache,) = (tmp_path / "flow").rglob("*.*")
    assert cache.relative_to(tmp_path / "flow").as_posix() == "Run/v_Run_g01_c01.flow"
    cache = open_flow(cache)
    assert isinstance(cache, FlowStore) and cache.shape == (7, 2, H, W)
    assert cache.meta["frame_size"] == [W, H] and cache.meta["source_size"] == [W, H]
    plan = plan_snippets(8, 2, 3, flow=True, random=False)
    assert sample["flow"].shape == (2, 6, H, W)
    fields = torch.from_numpy(cache[plan.flow_fields[1]])  # any plan gives values in range
    assert fields.dtype == torch.uint8 and sample["flow"].abs().max() <= 1.0


def _store_flow(q: np.ndarray, stem: Path, store: str, meta: dict | None = None) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    if store == "npy":
        np.save(stem.with_name(stem.name + ".npy"), q)
    elif store == "flow":
        with FlowStoreWriter(stem.with_name(stem.name + ".flow"), meta=meta) as writer:
            for field in q:  # flat fields: JPEG keeps them exactly
                writer.append(np.ascontiguousarray(field))
    else:
        stem.mkdir()
        for i, field in enumerate(q, 1):
            for axis, image in zip("xy", field, strict=True):
                Image.fromarray(image).save(stem / f"flow_{axis}_{i:05d}.jpg", quality=95)


@pytest.mark.parametrize("store", ["flow", "npy", "frames"])
def test_flow_is_read_from_any_store_without_computing(ucf, tmp_path, store):
    root, videos, splits, lengths = ucf
    flow_root = tmp_path / "flow"
    for name in lengths:
        q = np.load((root / "flow" / name).with_suffix(".npy"))
        _store_flow(q, flow_root / Path(name).with_suffix(""), store)
    before = sorted(flow_root.rglob("*"))
    ds = UCF101(
        videos, splits, train=False, modality="rgb+flow", num_segments=3, new_length=5,
        test_mode=True, transform=identity, flow_root=flow_root,
    )  # fmt: skip
    for i, num_frames in enumerate(lengths.values()):
        plan = plan_snippets(num_frames, 3, 5, flow=True)
        assert np.array_equal(field_index(ds[i]["flow"]), plan.flow_fields)
    assert ds.corrupt_count == 0 and sorted(flow_root.rglob("*")) == before


def test_flow_only_dataset_checks_the_size_a_flow_store_records(ucf, tmp_path):
    root, videos, splits, lengths = ucf
    flow_root = tmp_path / "flow"
    for name in lengths:  # flow computed at 2x the video's size, as --size would
        q = np.load((root / "flow" / name).with_suffix(".npy"))
        meta = {"source_size": [W // 2, H // 2], "frame_size": [W, H]}
        _store_flow(q, flow_root / Path(name).with_suffix(""), "flow", meta)
    options = {"modality": "flow", "num_segments": 2, "flow_root": flow_root, "train": False}
    assert UCF101(videos, splits, frame_size=(W, H), **options)[0]["flow"].shape[-2:] == (H, W)
    assert UCF101(videos, splits, **options)[0]["flow"].shape[-2:] == (H, W)  # no resize: any
    assert UCF101(videos, splits, short_side=48, **options)[0]["flow"].shape[-2:] == (H, W)
    with pytest.raises(ValueError, match=r"\(24, 32\) \(H, W\) but its flow is \(48, 64\)"):
        UCF101(videos, splits, short_side=24, **options)[0]
    with pytest.raises(ValueError, match="store: expected one of"):
        UCF101(videos, splits, flow_store="zip", **options)


def test_frame_folders_rgb_and_flow(tmp_path):
    folder = tmp_path / "frames" / "Jump" / "v_Jump_g01_c01"
    folder.mkdir(parents=True)
    num_frames = 9
    for i in range(num_frames):  # 1-indexed files, uniform images survive JPEG exactly
        Image.new("RGB", (W, H), (BASE + STEP * i,) * 3).save(folder / f"img_{i + 1:05d}.jpg")
    for i in range(num_frames - 1):
        Image.new("L", (W, H), 10 + 7 * i).save(folder / f"flow_x_{i + 1:05d}.jpg")
        Image.new("L", (W, H), 200).save(folder / f"flow_y_{i + 1:05d}.jpg")
    (tmp_path / "list.txt").write_text("Jump/v_Jump_g01_c01.avi 0\n")
    ds = VideoList(
        tmp_path / "list.txt", tmp_path / "frames", modality="rgb+flow", frame_dirs=True,
        num_segments=2, new_length=3, test_mode=True, transform=identity,
    )  # fmt: skip
    sample = ds[0]
    plan = plan_snippets(num_frames, 2, 3, flow=True)
    assert frame_index(sample["rgb"]) == plan.rgb_frames.tolist()
    assert np.array_equal(field_index(sample["flow"]), plan.flow_fields)
    assert ds.classes == ["0"]


# -------------------------------------------------------------------------- bad input


def test_missing_video_reported_with_path_at_build(ucf, tmp_path):
    _, videos, _, _ = ucf
    (tmp_path / "list.txt").write_text(
        "Archery/v_Archery_g01_c01.avi 0\nArchery/v_Archery_g09_c09.avi 0\n"
    )
    with pytest.raises(FileNotFoundError) as err:
        VideoList(tmp_path / "list.txt", videos)
    assert "1 of 2 videos" in str(err.value) and "Archery/v_Archery_g09_c09.avi" in str(err.value)
    with pytest.raises(FileNotFoundError, match="frame folders"):
        VideoList(tmp_path / "list.txt", videos, frame_dirs=True)


def test_path_escaping_the_root_is_rejected(ucf):
    _, videos, _, _ = ucf
    with pytest.raises(ValueError, match="escapes the dataset root"):
        VideoDataset([VideoRecord("Archery/../../outside.avi", 0)], videos, ["a"])
    with pytest.raises(ValueError, match="escapes the dataset root"):
        VideoDataset([VideoRecord(str(videos / "Archery/v_Archery_g01_c01.avi"), 0)], videos, ["a"])


def test_bad_arguments(ucf):
    _, videos, splits, _ = ucf
    with pytest.raises(ValueError, match="flow_root: modality 'flow' reads flow"):
        UCF101(videos, splits, modality="flow")
    with pytest.raises(ValueError, match="modality: expected one of"):
        UCF101(videos, splits, modality="depth")
    with pytest.raises(ValueError, match="num_segments: expected a positive int, got 0"):
        UCF101(videos, splits, num_segments=0)


def make_broken(path: Path, kind: str) -> None:
    if kind == "truncated":  # a real video cut to its first 40 %
        encode(path, 24)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * 0.4)])
    elif kind == "garbage":
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, np.uint8).tobytes())
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "corrupt-payload":  # intact header, scrambled frames
        encode(path, 24)
        data = bytearray(path.read_bytes())
        for i in range(len(data) // 3, len(data) - 300):
            data[i] = (data[i] * 7 + 13) % 256
        path.write_bytes(bytes(data))


BROKEN = ["truncated", "garbage", "empty", "corrupt-payload"]


@pytest.fixture(scope="module")
def with_broken(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken")
    names = ["Walk/ok_0.avi", "Walk/bad_truncated.avi", "Walk/bad_garbage.avi", "Walk/ok_1.avi"]
    names += ["Walk/bad_empty.avi", "Walk/bad_corrupt-payload.avi", "Walk/ok_2.avi"]
    for i, name in enumerate(names):
        kind = name.split("_", 1)[1][:-4]
        if name.startswith("Walk/ok"):
            encode(root / name, 12 + i)
        else:
            make_broken(root / name, kind)
    (root / "list.txt").write_text("".join(f"{n} {i % 2}\n" for i, n in enumerate(names)))
    return root, names


@pytest.mark.parametrize("kind", BROKEN)
def test_each_broken_file_is_undecodable(with_broken, kind):
    root, _ = with_broken
    with pytest.raises(VideoDecodeError, match=f"bad_{kind}.avi"):
        probe = probe_video(root / f"Walk/bad_{kind}.avi")
        read_frames(root / f"Walk/bad_{kind}.avi", range(probe.num_frames))


def test_corrupt_videos_are_logged_counted_and_replaced(with_broken, caplog):
    root, names = with_broken
    ds = VideoList(root / "list.txt", root, num_segments=2, test_mode=True, transform=identity)
    with caplog.at_level(logging.WARNING, logger="attnvideo.data.datasets"):
        items = [ds[i] for i in range(len(ds))]
    # Each broken video is replaced by the next readable one in the list (deterministic).
    assert [s["video_index"] for s in items] == [0, 3, 3, 3, 6, 6, 6]
    assert [s["label"] for s in items] == [0, 1, 1, 1, 0, 0, 0]
    assert ds.corrupt_count == 4
    assert sorted(ds.corrupt_videos) == sorted(n for n in names if "bad_" in n)
    logged = caplog.text
    assert all(str(root / n) in logged for n in names if "bad_" in n)
    again = ds[2]
    assert again["video_index"] == 3 and torch.equal(again["rgb"], items[2]["rgb"])
    assert ds.corrupt_count == 5


def test_corrupt_count_is_shared_by_dataloader_workers(with_broken):
    root, _ = with_broken
    ds = VideoList(root / "list.txt", root, num_segments=2, test_mode=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2)
    indices = [int(b["video_index"]) for b in loader]
    assert indices == [0, 3, 3, 3, 6, 6, 6]
    assert ds.corrupt_count == 4  # counted in the workers, visible in the main process
    assert len(ds.corrupt_videos) == 4


def test_corrupt_flow_cache_is_replaced(ucf, tmp_path):
    _, videos, _, lengths = ucf
    names = list(lengths)[:2]
    (tmp_path / "list.txt").write_text("".join(f"{n} 0\n" for n in names))
    flow = tmp_path / "flow"
    write_flow_cache((flow / names[1]).with_suffix(".npy"), lengths[names[1]])
    bad = (flow / names[0]).with_suffix(".npy")
    bad.write_bytes(b"\x93NUMPY garbage")
    ds = VideoList(tmp_path / "list.txt", videos, modality="flow", flow_root=flow, num_segments=2)
    assert ds[0]["video_index"] == 1 and ds.corrupt_count == 1


def test_all_videos_broken_raises(tmp_path):
    make_broken(tmp_path / "a.avi", "garbage")
    (tmp_path / "list.txt").write_text("a.avi 0\n")
    ds = VideoList(tmp_path / "list.txt", tmp_path)
    with pytest.raises(RuntimeError, match="no readable video among the 1"):
        ds[0]


def test_hmdb51_dataset(tmp_path):
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "brush_hair_test_split1.txt").write_bytes(b"a.avi 1 \r\nb.avi 2 \r\n")
    (tmp_path / "splits" / "sword_exercise_test_split1.txt").write_bytes(b"c.avi 1 \r\n")
    for name, num_frames in [("brush_hair/a.avi", 10), ("sword_exercise/c.avi", 14)]:
        encode(tmp_path / "videos" / name, num_frames)
    ds = HMDB51(tmp_path / "videos", tmp_path / "splits", num_segments=2, test_mode=True,
                transform=identity)  # fmt: skip
    assert ds.classes == ["brush_hair", "sword_exercise"] and len(ds) == 2
    assert [ds[i]["label"] for i in range(2)] == [0, 1]
    assert frame_index(ds[1]["rgb"]) == plan_snippets(14, 2, flow=False).rgb_frames.tolist()


@pytest.mark.slow  # a spawned worker imports torch afresh (several seconds)
def test_dataset_and_counter_work_with_spawned_workers(with_broken):
    root, _ = with_broken
    ds = VideoList(root / "list.txt", root, num_segments=2, test_mode=True)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=4, num_workers=1, multiprocessing_context="spawn"
    )
    assert torch.cat([b["video_index"] for b in loader]).tolist() == [0, 3, 3, 3, 6, 6, 6]
    assert ds.corrupt_count == 4


def test_videos_sharing_a_flow_output_are_refused(ucf, tmp_path):
    _, videos, _, lengths = ucf
    name = next(iter(lengths))
    (tmp_path / "v").mkdir()
    for suffix in (".avi", ".mp4"):
        (tmp_path / "v" / f"x{suffix}").symlink_to(videos / name)
    (tmp_path / "list.txt").write_text("x.avi 0\nx.mp4 0\nx.avi 0\n")
    VideoList(tmp_path / "list.txt", tmp_path / "v")  # RGB from the files: no clash
    with pytest.raises(ValueError, match=r"'x.avi' and 'x.mp4' would share one flow output"):
        VideoList(tmp_path / "list.txt", tmp_path / "v", modality="flow", flow_root=tmp_path)
