"""Decoding real files bit for bit: the public clips in tests/data/real (UCF-101 Xvid,
HMDB-51 DivX with packed B-frames and placeholder packets, mmaction2's H.264 clips) and
files made here for container features the clips lack (AVI without index, edit lists,
variable frame rate, rotation metadata, open GOPs).

The reference is always a plain full decode with PyAV: frame i is the i-th frame
``container.decode(video=0)`` yields, converted by ``to_ndarray(format="rgb24")`` (or by
``reformat(width, height, "rgb24", interpolation=INTERPOLATION)`` when resized)."""

from __future__ import annotations

import json
import logging
import multiprocessing
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from attnvideo.data import (
    VideoList,
    plan_snippets,
    probe_cache_file,
    probe_video,
    read_frames,
    scan_frames,
    video,
)
from attnvideo.data.video import INTERPOLATION, ReadStats, VideoDecodeError, iter_frames

REAL = Path(__file__).parent / "data" / "real"
CLIPS = sorted(p.name for p in REAL.iterdir() if p.suffix in (".avi", ".mp4"))


def full_decode(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    with av.open(str(path), metadata_errors="ignore") as container:
        if size is None:
            return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        w, h = size
        return np.stack(
            [
                f.reformat(w, h, "rgb24", interpolation=INTERPOLATION).to_ndarray()
                for f in container.decode(video=0)
            ]
        )


@pytest.fixture(scope="module")
def decoded() -> dict[str, np.ndarray]:
    return {name: full_decode(REAL / name) for name in CLIPS}


def index_sets(num_frames: int, seed: int = 0) -> list[list[int]]:
    """All frames at once, a dozen frames alone, the TSN test positions (8 and 25
    segments, with their flow snippets), and random sets in any order with repeats."""
    sets = [list(range(num_frames))] + [[i] for i in range(0, num_frames, num_frames // 12)]
    for segments in (8, 25):
        plan = plan_snippets(num_frames, segments, 5, flow=True, random=False)
        sets.append(plan.rgb_frames.tolist())
        sets.append(np.unique(plan.flow_fields).tolist())
    rng = np.random.default_rng(seed)
    sets += [rng.integers(0, num_frames, size=8).tolist() for _ in range(10)]
    sets.append([num_frames - 1, 0, num_frames // 2, num_frames - 1])
    return sets


def test_the_real_clips_are_there():
    assert len(CLIPS) == 6, CLIPS  # NOTICE.md lists six


@pytest.mark.parametrize("name", CLIPS)
def test_probe_counts_what_a_full_decode_yields(name, decoded):
    probe = probe_video(REAL / name)
    assert probe.num_frames == len(decoded[name])
    assert (probe.height, probe.width) == decoded[name].shape[1:3]


@pytest.mark.parametrize("name", CLIPS)
def test_read_frames_equals_full_decode_bit_for_bit(name, decoded):
    full = decoded[name]
    stats = ReadStats()
    for indices in index_sets(len(full)):
        got = read_frames(REAL / name, indices, stats=stats)
        assert np.array_equal(got, full[indices]), (name, indices)
    assert stats.fallbacks == 0, stats  # every clip reads by seeking, verified


@pytest.mark.parametrize("name", CLIPS)
@pytest.mark.parametrize("resize", [{"short_side": 128}, {"size": (170, 128)}])
def test_resized_reads_equal_a_resized_full_decode(name, resize):
    probe = probe_video(REAL / name)
    from attnvideo.data.video import scaled_size

    size = scaled_size(probe.width, probe.height, **resize)
    full = full_decode(REAL / name, size)
    assert full.shape[1:3] == (size[1], size[0])
    for indices in index_sets(len(full))[-12:]:
        assert np.array_equal(read_frames(REAL / name, indices, **resize), full[indices])
    assert np.array_equal(np.stack(list(iter_frames(REAL / name, **resize))), full)


@pytest.mark.parametrize("name", CLIPS)
def test_iter_frames_is_a_full_decode(name, decoded):
    assert np.array_equal(np.stack(list(iter_frames(REAL / name))), decoded[name])


def test_soccer_juggling_seeks_are_relocated_not_trusted(decoded):
    # This clip's AVI index sends every seek to a keyframe at or after frame 156 to frame
    # 144: the reader must notice, and still return the frames asked for.
    name = "ucf101_SoccerJuggling__v_SoccerJuggling_g23_c01.avi"
    stats = ReadStats()
    wanted = [160, 200, 239]
    assert np.array_equal(read_frames(REAL / name, wanted, stats=stats), decoded[name][wanted])
    assert stats.fallbacks == 0 and stats.seeks >= 1


def test_a_changed_file_is_not_read_wrongly(tmp_path):
    # The probe is keyed by (path, size, mtime): a file rewritten in place is probed again.
    path = tmp_path / "clip.avi"
    path.write_bytes((REAL / "mmaction2__test.avi").read_bytes())
    first = read_frames(path, [10])
    path.write_bytes((REAL / "hmdb51_wave__RATRACE_wave_f_nm_np1_fr_goo_37.avi").read_bytes())
    second = read_frames(path, [10])
    assert first.shape != second.shape
    assert np.array_equal(second[0], full_decode(path)[10])


def real_clip_list(tmp_path: Path, num_segments: int, **options) -> VideoList:
    """The six real clips as a test-mode list dataset (uint8, no transform)."""
    root = tmp_path / "videos"
    root.mkdir()
    for name in CLIPS:
        (root / name).symlink_to(REAL / name)
    (tmp_path / "list.txt").write_text("".join(f"{n} {i % 2}\n" for i, n in enumerate(CLIPS)))
    return VideoList(
        tmp_path / "list.txt",
        root,
        num_segments=num_segments,
        test_mode=True,
        transform=lambda s: s,
        to_float=False,
        **options,
    )


def test_real_clips_in_a_dataset_are_never_substituted(tmp_path, caplog):
    ds = real_clip_list(tmp_path, 8)
    with caplog.at_level(logging.WARNING, logger="attnvideo.data.datasets"):
        samples = [ds[i] for i in range(len(ds))]
    assert ds.corrupt_count == 0 and not caplog.records
    for name, sample in zip(CLIPS, samples, strict=True):
        full = full_decode(REAL / name)
        plan = plan_snippets(len(full), 8, 5, flow=False, random=False)
        expected = np.moveaxis(full[plan.rgb_frames], -1, 1)  # (T, 3, H, W)
        assert np.array_equal(sample["rgb"].numpy(), expected), name


# --- container features the real clips lack, made with PyAV -----------------------------

H, W = 48, 64


def frames_for(num_frames: int, hold: int = 1) -> np.ndarray:
    """A sliding texture with a counter patch; each picture held for ``hold`` frames."""
    rng = np.random.default_rng(1)
    frames = np.empty((num_frames, H, W, 3), np.uint8)
    texture = rng.integers(0, 255, size=(H, 2 * W, 3), dtype=np.uint8)
    for i in range(num_frames):
        k = i // hold
        frames[i] = texture[:, (3 * k) % W : (3 * k) % W + W]
        frames[i, :6, :6] = 8 * (k % 30)
    return frames


def write(
    path: Path,
    num_frames: int,
    codec: str,
    *,
    pts=None,
    rotate=None,
    gop: int = 6,
    hold: int = 1,
    **options,
) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = options
        if pts is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotate is not None:
            stream.metadata["rotate"] = str(rotate)
        for i, img in enumerate(frames_for(num_frames, hold)):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def strip_avi_index(path: Path) -> Path:
    data = path.read_bytes()
    at = data.rfind(b"idx1")
    assert at > 0, "no idx1 chunk to strip"
    out = path.with_name("noindex-" + path.name)
    out.write_bytes(data[:at])
    return out


def trim_with_edit_list(path: Path, skip: int) -> Path:
    """Remux an MP4 so that its first ``skip`` frames lie before the edit list's start
    (negative timestamps): players and FFmpeg decode them but do not show them."""
    out = path.with_name("edit-" + path.name)
    with av.open(str(path)) as src, av.open(str(out), "w") as dst:
        ins = src.streams.video[0]
        outs = dst.add_stream_from_template(ins)
        shift = skip * round(1 / (ins.average_rate * ins.time_base))
        for packet in src.demux(ins):
            if packet.dts is None:
                continue
            packet.pts -= shift
            packet.dts -= shift
            packet.stream = outs
            dst.mux(packet)
    return out


def edge_cases(tmp: Path) -> dict[str, Path]:
    vfr = np.cumsum([0] + [40 if i % 3 else 90 for i in range(39)]).tolist()
    made = {
        "xvid-like.avi": write(tmp / "a.avi", 40, "mpeg4", bf="2", qscale="3"),
        "h264-open-gop.mp4": write(
            tmp / "b.mp4", 40, "libx264", **{"x264-params": "open-gop=1:keyint=7:bframes=3"}
        ),
        "h264-open-gop.avi": write(
            tmp / "c.avi", 40, "libx264", **{"x264-params": "open-gop=1:keyint=7:bframes=3"}
        ),
        "vfr.mp4": write(tmp / "d.mp4", 40, "libx264", pts=vfr),
        "rotated.mp4": write(tmp / "e.mp4", 30, "libx264", rotate=90),
    }
    made["no-index.avi"] = strip_avi_index(write(tmp / "f.avi", 40, "mpeg4", bf="2"))
    made["edit-list.mp4"] = trim_with_edit_list(write(tmp / "g.mp4", 40, "libx264"), 5)
    return made


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    return edge_cases(tmp_path_factory.mktemp("edge"))


EDGE = ["xvid-like.avi", "h264-open-gop.mp4", "h264-open-gop.avi", "vfr.mp4", "rotated.mp4"]
EDGE += ["no-index.avi", "edit-list.mp4"]


LONG_GOP = {  # far from any keyframe: reads skip the frames nothing predicts from
    "h264-b-pyramid.mp4": ("libx264", {"x264-params": "scenecut=0:bframes=3:b-pyramid=normal"}),
    "h264-no-pyramid.avi": ("libx264", {"x264-params": "scenecut=0:bframes=2:b-pyramid=none"}),
    "mpeg4-b-frames.avi": ("mpeg4", {"bf": "2", "sc_threshold": "1000000000"}),
}


@pytest.mark.parametrize("name", sorted(LONG_GOP))
@pytest.mark.parametrize("hold", [1, 3])  # 3: every picture three times, duplicates
def test_far_reads_skip_unneeded_frames_and_stay_exact(tmp_path, name, hold):
    codec, options = LONG_GOP[name]
    path = write(tmp_path / name, 150, codec, gop=250, hold=hold, **options)
    full = full_decode(path)
    assert len(full) == 150 and len(probe_video(path).keyframes) == 1
    video._UNSEEKABLE.clear()
    stats = ReadStats()
    assert np.array_equal(read_frames(path, [140], stats=stats), full[[140]])
    assert stats.frames_decoded < 120 and stats.fallbacks == 0, stats  # frames were skipped
    for indices in index_sets(len(full), seed=2):
        stats = ReadStats()
        assert np.array_equal(read_frames(path, indices, stats=stats), full[indices]), indices
        assert stats.fallbacks == 0, (indices, stats)


@pytest.mark.parametrize("name", EDGE)
def test_made_edge_cases_read_exactly(made, name):
    path = made[name]
    full = full_decode(path)
    assert probe_video(path).num_frames == len(full)
    for indices in index_sets(len(full), seed=1):
        assert np.array_equal(read_frames(path, indices), full[indices]), (name, indices)


def test_edit_list_hides_frames_and_the_probe_agrees(made):
    # The remuxed file keeps all 40 packets, but the first five lie before the edit.
    path = made["edit-list.mp4"]
    with av.open(str(path)) as container:
        packets = sum(1 for p in container.demux(video=0) if p.size)
    assert packets == 40
    assert probe_video(path).num_frames == len(full_decode(path))


def test_a_truncated_real_clip_reads_what_a_full_decode_reads(tmp_path):
    # Half a file: FFmpeg decodes what is there. Whatever a full decode yields is what the
    # reader serves, exactly; nothing past it.
    data = (REAL / "ucf101_SoccerJuggling__v_SoccerJuggling_g23_c01.avi").read_bytes()
    path = tmp_path / "half.avi"
    path.write_bytes(data[: len(data) // 2])
    full = full_decode(path)
    probe = probe_video(path)
    assert probe.num_frames == len(full) < 240
    assert np.array_equal(read_frames(path, [0, len(full) - 1]), full[[0, -1]])
    with pytest.raises(ValueError, match="indices"):
        read_frames(path, [len(full)])


def test_garbage_is_a_decode_error_naming_the_file(tmp_path):
    path = tmp_path / "garbage.avi"
    path.write_bytes(b"RIFF" + bytes(range(256)) * 40)
    with pytest.raises(VideoDecodeError, match=r"garbage\.avi"):
        probe_video(path)
    with pytest.raises(VideoDecodeError, match=r"garbage\.avi"):
        list(iter_frames(path))


def test_dataset_decodes_resized_and_computes_flow_at_that_size(tmp_path):
    root = tmp_path / "videos"
    root.mkdir()
    name = "mmaction2__demo.mp4"
    (root / name).symlink_to(REAL / name)
    (tmp_path / "list.txt").write_text(f"{name} 0\n")

    def dataset(short_side: int) -> VideoList:
        return VideoList(
            tmp_path / "list.txt",
            root,
            modality="rgb+flow",
            num_segments=3,
            new_length=2,
            test_mode=True,
            flow_root=tmp_path / "flow",
            transform=lambda s: s,
            to_float=False,
            short_side=short_side,
        )

    ds = dataset(64)
    sample = ds[0]
    assert tuple(sample["rgb"].shape) == (3, 3, 64, 85) and ds.corrupt_count == 0
    assert tuple(sample["flow"].shape) == (3, 4, 64, 85)
    plan = plan_snippets(280, 3, 2, flow=True, random=False)
    expected = full_decode(REAL / name, (85, 64))[plan.rgb_frames]
    assert np.array_equal(sample["rgb"].numpy(), np.moveaxis(expected, -1, 1))
    # The same flow cache read with frames at another size: a loud error, not a
    # substitution of every video.
    other = dataset(48)
    with pytest.raises(ValueError, match="compute the flow at the frames' size"):
        other[0]
    with pytest.raises(ValueError, match="short_side"):
        VideoList(tmp_path / "list.txt", root, short_side=0)


# --- the probe kept on disk (probe_cache) --------------------------------------------


def same_probe(a, b) -> bool:
    return (
        a.num_frames == b.num_frames
        and np.array_equal(a.fingerprints, b.fingerprints)
        and a.seek_points == b.seek_points
        and (a.height, a.width, a.container_frames, a.codec)
        == (b.height, b.width, b.container_frames, b.codec)
    )


@pytest.mark.parametrize("name", CLIPS)
def test_a_kept_probe_is_the_probe_and_reads_exactly(name, decoded, tmp_path):
    fresh = probe_video(REAL / name)
    kept = probe_video(REAL / name, cache_dir=tmp_path)
    assert probe_cache_file(REAL / name, tmp_path).is_file()
    video._probe_cached.cache_clear()  # as a new process: only the file is left
    try:
        again = probe_video(REAL / name, cache_dir=tmp_path)
        assert same_probe(again, fresh) and same_probe(kept, fresh)
        assert not np.shares_memory(again.fingerprints, fresh.fingerprints)  # from the file
        stats = ReadStats()
        wanted = plan_snippets(len(decoded[name]), 25, 5, flow=True, random=False).rgb_frames
        got = read_frames(REAL / name, wanted.tolist(), stats=stats)
        assert np.array_equal(got, decoded[name][wanted]) and stats.fallbacks == 0
    finally:
        video._probe_cached.cache_clear()


def test_a_stale_or_broken_kept_probe_is_redone(tmp_path):
    clip = tmp_path / "clip.avi"
    clip.write_bytes((REAL / "mmaction2__test.avi").read_bytes())
    probes = tmp_path / "probes"
    probe_video(clip, cache_dir=probes)
    file = probe_cache_file(clip, probes)
    record = json.loads(file.read_text())
    # The video replaced by another: its size and mtime change, the file is not used.
    clip.write_bytes((REAL / "hmdb51_wave__RATRACE_wave_f_nm_np1_fr_goo_37.avi").read_bytes())
    video._probe_cached.cache_clear()
    assert probe_video(clip, cache_dir=probes).num_frames == 72
    assert json.loads(file.read_text())["num_frames"] == 72  # replaced
    # Made by another decoder version: not trusted (frames may differ), redone.
    record = json.loads(file.read_text())
    file.write_text(json.dumps({**record, "decoder": "pyav 0.0", "num_frames": 5}))
    video._probe_cached.cache_clear()
    assert probe_video(clip, cache_dir=probes).num_frames == 72
    # Cut short or garbage: redone.
    for broken in (file.read_text()[:40], "not json", json.dumps({**record, "num_frames": 71})):
        file.write_text(broken)
        video._probe_cached.cache_clear()
        assert probe_video(clip, cache_dir=probes).num_frames == 72
    video._probe_cached.cache_clear()


def test_videos_of_one_name_in_two_folders_keep_two_probes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "clip.avi").write_bytes((REAL / "mmaction2__test.avi").read_bytes())
    wave = (REAL / "hmdb51_wave__RATRACE_wave_f_nm_np1_fr_goo_37.avi").read_bytes()
    (tmp_path / "b" / "clip.avi").write_bytes(wave)
    probes = tmp_path / "probes"
    counts = [probe_video(tmp_path / d / "clip.avi", cache_dir=probes).num_frames for d in "ab"]
    video._probe_cached.cache_clear()
    again = [probe_video(tmp_path / d / "clip.avi", cache_dir=probes).num_frames for d in "ab"]
    video._probe_cached.cache_clear()
    assert counts == again == [164, 72] and len(list(probes.iterdir())) == 2


def test_an_unwritable_probe_cache_warns_and_still_probes(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder should be")
    with pytest.warns(RuntimeWarning, match="cannot keep the probe"):
        probe = probe_video(REAL / "mmaction2__test.avi", cache_dir=blocked / "probes")
    video._probe_cached.cache_clear()
    assert probe.num_frames == 164


def _probe_all(cache: str) -> list[int]:
    video._probe_cached.cache_clear()  # a forked child starts from the parent's memory
    return [probe_video(REAL / name, cache_dir=cache).num_frames for name in CLIPS]


def test_processes_probing_into_one_folder_at_once(tmp_path):
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        first, second = pool.map(_probe_all, [str(tmp_path)] * 2)
    assert first == second == [probe_video(REAL / n).num_frames for n in CLIPS]
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json"] * len(CLIPS)  # no .tmp


def test_a_dataset_with_a_probe_cache_probes_once(tmp_path):
    probes = tmp_path / "probes"
    ds = real_clip_list(tmp_path, 3, probe_cache=probes)
    for i in range(len(ds)):
        ds[i]
    assert len(list(probes.glob("*.probe.json"))) == len(CLIPS)
    video._probe_cached.cache_clear()


def test_a_trusted_landing_that_moved_is_identified_again(decoded):
    # A seek identified on its first frame is trusted the next time (not fingerprinted);
    # if it lands elsewhere after all, the first frame returned does not verify, and the
    # read identifies the landing again instead of giving up on seeking.
    name = "ucf101_SoccerJuggling__v_SoccerJuggling_g23_c01.avi"
    path, full = REAL / name, decoded[name]
    video._LANDINGS.clear()
    video._TRUSTED.clear()
    video._UNSEEKABLE.clear()
    read_frames(path, [100])
    source = probe_video(path).source
    trusted = [key for key in video._TRUSTED if key[0] == source]
    assert trusted, "the first read's seek was identified on its first frame"
    right = {key: video._LANDINGS[key] for key in trusted}
    for key in trusted:  # make every trusted landing wrong by 5 frames
        video._LANDINGS[key] -= 5
    stats = ReadStats()
    assert np.array_equal(read_frames(path, [100], stats=stats), full[[100]])
    assert stats.fallbacks == 0 and stats.seeks >= 2, stats  # the trusted seek, then again
    assert any(video._LANDINGS[key] == frame for key, frame in right.items())  # relearned
    assert source not in video._UNSEEKABLE


@pytest.mark.parametrize("name", CLIPS)
@pytest.mark.parametrize("threads", [1, 2])
def test_scan_frames_is_a_full_decode_keeping_what_is_asked(name, decoded, threads):
    full = decoded[name]
    wanted = [0, len(full) // 3, len(full) - 1, len(full) + 5]  # the last one does not exist
    count, kept = scan_frames(REAL / name, wanted, threads=threads)
    assert count == len(full) and sorted(kept) == sorted(wanted[:3])
    assert all(np.array_equal(kept[i], full[i]) for i in kept)
    _, small = scan_frames(REAL / name, wanted[:3], short_side=64, threads=threads)
    resized = full_decode(REAL / name, size=video.scaled_size(*full.shape[2:0:-1], short_side=64))
    assert all(np.array_equal(small[i], resized[i]) for i in small)


def test_scan_frames_rejects_bad_arguments():
    clip = REAL / "mmaction2__test.avi"
    with pytest.raises(ValueError, match="indices"):
        scan_frames(clip, [-1])
    with pytest.raises(ValueError, match="threads"):
        scan_frames(clip, [0], threads=-2)
