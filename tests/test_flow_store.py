"""The flow store: exact (PNG) and bounded (JPEG) round trips, random access, atomic writes,
corrupt files, metadata, and indexing like a numpy array."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnvideo.data.flow_store import (
    FLOW_STORE_SUFFIX,
    FlowStore,
    FlowStoreWriter,
    open_flow_store,
)
from attnvideo.functional import quantize_flow

PX_PER_LEVEL = 40 / 255  # TSN's uint8 step for the bound 20


def smooth_flow(
    num: int, height: int, width: int, seed: int = 0, noise: float = 0.05
) -> np.ndarray:
    """Quantised flow (num, 2, H, W): random smooth motion (sinusoids), ``noise`` px noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    flow = np.zeros((num, 2, height, width), np.float32)
    for t in range(num):
        for c in range(2):
            for _ in range(3):
                fy, fx, phase = rng.uniform(0.2, 1.0), rng.uniform(0.2, 1.0), rng.uniform(0, 6.3)
                flow[t, c] += rng.uniform(-3, 3) * np.sin(2 * np.pi * (fy * y + fx * x) + phase)
    flow += rng.normal(0, noise, flow.shape).astype(np.float32)
    return quantize_flow(torch.from_numpy(flow)).numpy()


def write(path: Path, flow: np.ndarray, **kwargs) -> Path:
    with FlowStoreWriter(path, **kwargs) as writer:
        for field in flow:
            writer.append(field)
    return path


@pytest.fixture(scope="module")
def jpeg_store(tmp_path_factory) -> tuple[FlowStore, np.ndarray]:
    """A 12-field JPEG store with odd H (rows get padded) and everything it decodes to."""
    path = write(tmp_path_factory.mktemp("store") / "v.flow", smooth_flow(12, 21, 30))
    store = open_flow_store(path)
    return store, np.stack([store[i] for i in range(len(store))])


# --- round trips --------------------------------------------------------------------------


def test_png_round_trip_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    flow = rng.integers(0, 256, (5, 2, 13, 17), dtype=np.uint8)  # noise, odd size
    store = open_flow_store(write(tmp_path / "v.flow", flow, codec="png"))
    assert store.shape == flow.shape and len(store) == 5
    np.testing.assert_array_equal(store[:], flow)


def test_jpeg_round_trip_is_within_the_stated_bound(tmp_path: Path) -> None:
    # Default JPEG (quality 93) on smooth flow moving everywhere: mean error at most
    # 0.04 px (TSN's own uint8 rounding costs 0.039 px), no pixel off by more than 2
    # levels. Real flow, still over much of the frame, fares better: see bench_flow.py.
    flow = smooth_flow(6, 48, 64, noise=0.0)
    decoded = open_flow_store(write(tmp_path / "v.flow", flow))[:]
    error = np.abs(decoded.astype(np.int16) - flow)
    assert error.mean() * PX_PER_LEVEL <= 0.04
    assert error.max() <= 2
    assert error.mean() > 0  # lossy: were it exact, this test would not test JPEG


def test_jpeg_quality_trades_size_for_error(tmp_path: Path) -> None:
    flow = smooth_flow(4, 48, 64)
    sizes, errors = [], []
    for quality in (80, 93, 100):
        path = write(tmp_path / f"q{quality}.flow", flow, quality=quality)
        sizes.append(path.stat().st_size)
        errors.append(np.abs(open_flow_store(path)[:].astype(np.int16) - flow).mean())
    assert sizes == sorted(sizes) and errors == sorted(errors, reverse=True)


def test_jpeg_keeps_x_and_y_in_separate_blocks(tmp_path: Path) -> None:
    # x flat 0, y flat 255, H = 13 (not a multiple of 8): were the rows not padded, a
    # block would hold the edge between them and ring. Padded, both stay flat and exact.
    field = np.stack([np.zeros((13, 20), np.uint8), np.full((13, 20), 255, np.uint8)])
    store = open_flow_store(write(tmp_path / "v.flow", field[None], quality=50))
    np.testing.assert_array_equal(store[0], field)


# --- random access ------------------------------------------------------------------------


def test_random_access_equals_sequential_decode(jpeg_store) -> None:
    store, fields = jpeg_store
    np.testing.assert_array_equal(store[:], fields)
    for start in range(len(store) - 5 + 1):  # every snippet of L = 5
        np.testing.assert_array_equal(store[start : start + 5], fields[start : start + 5])
        np.testing.assert_array_equal(store[np.arange(start, start + 5)], fields[start : start + 5])
    np.testing.assert_array_equal(np.asarray(store), fields)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_index_reads_like_numpy(jpeg_store, data) -> None:
    store, fields = jpeg_store
    num = len(store)
    index = data.draw(
        st.one_of(
            st.lists(st.integers(-num, num - 1), max_size=20),
            st.lists(st.integers(-num, num - 1), max_size=20).map(lambda v: np.array(v, np.int64)),
            st.lists(st.booleans(), min_size=num, max_size=num).map(np.array),
            st.builds(
                slice,
                st.none() | st.integers(-num - 2, num + 2),
                st.none() | st.integers(-num - 2, num + 2),
                st.none() | st.integers(-3, 3).filter(bool),
            ),
            st.integers(-num, num - 1),
        )
    )
    got = store[index]
    want = fields[index]
    assert got.dtype == np.uint8 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_bad_indices_raise_like_a_sequence(jpeg_store) -> None:
    store, _ = jpeg_store
    with pytest.raises(IndexError, match="index: field 12 is out of range"):
        store[12]
    with pytest.raises(IndexError, match="index: field -13 is out of range"):
        store[[0, -13]]
    with pytest.raises(IndexError, match="first axis only"):
        store[0, 1]
    with pytest.raises(IndexError, match="boolean mask of shape"):
        store[np.ones(3, bool)]
    with pytest.raises(TypeError, match="index: expected an int, a slice"):
        store[[0.5]]
    with pytest.raises(TypeError, match="index: expected an int, a slice"):
        store[np.zeros((2, 2), int)]
    assert sum(1 for _ in store) == len(store)  # iteration stops at IndexError


# --- atomic writes ------------------------------------------------------------------------


def test_close_publishes_atomically(tmp_path: Path) -> None:
    target = tmp_path / f"v{FLOW_STORE_SUFFIX}"
    writer = FlowStoreWriter(target)
    writer.append(smooth_flow(1, 16, 16)[0])
    (tmp,) = tmp_path.iterdir()
    assert not target.exists()
    assert re.fullmatch(r"\.v\.flow\.\d+@[\w-]+\.[0-9a-f]{12}\.tmp", tmp.name)
    assert writer.close() == target
    assert [p.name for p in tmp_path.iterdir()] == ["v.flow"]
    assert writer.close() == target  # closing again is harmless


def test_exception_inside_with_leaves_no_file(tmp_path: Path) -> None:
    flow = smooth_flow(3, 16, 16)
    with pytest.raises(RuntimeError, match="stop"), FlowStoreWriter(tmp_path / "v.flow") as w:
        w.append(flow[0])
        w.append(flow[1])
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_the_old_file(tmp_path: Path) -> None:
    old = smooth_flow(2, 16, 16, seed=1)
    target = write(tmp_path / "v.flow", old, codec="png")
    with pytest.raises(ValueError, match="field"), FlowStoreWriter(target, codec="png") as w:
        w.append(smooth_flow(1, 16, 16, seed=2)[0])
        w.append(np.zeros((2, 8, 8), np.uint8))  # wrong size: the rewrite fails
    assert [p.name for p in tmp_path.iterdir()] == ["v.flow"]
    np.testing.assert_array_equal(open_flow_store(target)[:], old)


def test_fields_go_to_disk_as_they_are_appended(tmp_path: Path) -> None:
    # The writer must not hold the video: after 20 noisy PNG fields (~2 KB each) the
    # temporary file holds them, up to one I/O buffer.
    rng = np.random.default_rng(0)
    writer = FlowStoreWriter(tmp_path / "v.flow", codec="png")
    for _ in range(20):
        writer.append(rng.integers(0, 256, (2, 32, 32), dtype=np.uint8))
    (tmp,) = tmp_path.iterdir()
    assert tmp.stat().st_size > 20 * 2 * 32 * 32 - 16384
    writer.abort()
    assert list(tmp_path.iterdir()) == []


# --- corrupt files ------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0, 7, 100, -1, -24, -30])
def test_truncated_file_raises_naming_it(tmp_path: Path, keep: int) -> None:
    path = write(tmp_path / "clip.flow", smooth_flow(4, 16, 16), codec="png")
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[: len(data) + keep])
    with pytest.raises(ValueError, match=r"'.*clip\.flow' is not a valid flow store"):
        open_flow_store(path)


def test_corrupt_field_raises_and_others_still_read(tmp_path: Path) -> None:
    flow = smooth_flow(4, 16, 16)
    path = write(tmp_path / "clip.flow", flow)
    store = open_flow_store(path)
    good = store[:]
    data = bytearray(path.read_bytes())
    middle = (int(store._offsets[2]) + int(store._offsets[3])) // 2
    data[middle] ^= 0xFF  # flip one byte inside field 2, same size
    path.write_bytes(bytes(data))
    store = open_flow_store(path)
    with pytest.raises(ValueError, match=r"clip\.flow.*field 2 fails its checksum"):
        store[1:4]
    np.testing.assert_array_equal(store[[0, 1, 3]], good[[0, 1, 3]])


def test_other_files_are_rejected(tmp_path: Path) -> None:
    npy = tmp_path / "v.npy"
    np.save(npy, np.zeros((2, 2, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="no flow store signature"):
        open_flow_store(npy)
    with pytest.raises(FileNotFoundError):
        open_flow_store(tmp_path / "missing.flow")


# --- metadata -----------------------------------------------------------------------------


def test_metadata_round_trips(tmp_path: Path) -> None:
    meta = {"method": "dis", "preset": "medium", "size_wh": (340, 256), "source": {"fps": 25.0}}
    flow = smooth_flow(3, 24, 40)
    store = open_flow_store(write(tmp_path / "v.flow", flow, quality=90, meta=meta, bound=15))
    assert store.shape == (3, 2, 24, 40)
    assert (store.codec, store.quality, store.bound) == ("jpeg", 90, 15.0)
    assert store.meta == {**meta, "size_wh": [340, 256]}  # JSON: tuples come back as lists
    png = open_flow_store(write(tmp_path / "p.flow", flow, codec="png"))
    assert (png.codec, png.quality, png.bound, png.meta) == ("png", 6, 20.0, {})


# --- bad arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"codec": "webp"}, "codec: expected one of"),
        ({"quality": 0}, "quality: codec 'jpeg' takes 1..100, got 0"),
        ({"codec": "png", "quality": 10}, "quality: codec 'png' takes 0..9, got 10"),
        ({"quality": 93.0}, "quality: expected an int"),
        ({"quality": True}, "quality: expected an int"),
        ({"meta": ["dis"]}, "meta: expected a dict"),
        ({"meta": {"method": object()}}, "meta: not JSON-serialisable"),
        ({"meta": {"epe": float("nan")}}, "meta: not JSON-serialisable"),
        ({"bound": 0}, "bound: expected a positive number"),
    ],
)
def test_bad_writer_arguments_raise(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FlowStoreWriter(tmp_path / "v.flow", **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("field", "match"),
    [
        (np.zeros((2, 8, 8), np.float32), "field: expected a uint8 numpy array"),
        ([[0]], "field: expected a uint8 numpy array"),
        (np.zeros((8, 8, 2), np.uint8), r"field: expected shape \(2, H, W\), got \(8, 8, 2\)"),
        (np.zeros((1, 2, 8, 8), np.uint8), r"field: expected shape \(2, H, W\)"),
        (np.zeros((2, 0, 8), np.uint8), r"field: expected shape \(2, H, W\)"),
        (np.zeros((2, 8, 9), np.uint8), r"expected shape \(2, 8, 8\) like the first field"),
        (np.zeros((2, 32760, 8), np.uint8), "exceeds JPEG's 65500 pixels"),
    ],
)
def test_bad_fields_raise(tmp_path: Path, field, match: str) -> None:
    writer = FlowStoreWriter(tmp_path / "v.flow")
    if "like the first" in match:
        writer.append(np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=match):
        writer.append(field)
    writer.abort()


def test_closing_an_empty_or_aborted_writer_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="field: no field was appended"):
        FlowStoreWriter(tmp_path / "v.flow").close()
    writer = FlowStoreWriter(tmp_path / "w.flow")
    writer.abort()
    with pytest.raises(ValueError, match="was aborted"):
        writer.close()
    with pytest.raises(ValueError, match="is closed"):
        writer.append(np.zeros((2, 8, 8), np.uint8))
    assert list(tmp_path.iterdir()) == []


# --- readers across processes and rewrites ------------------------------------------------


def _fds_on(path: Path) -> int:
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(path.resolve()))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_no_file_handle_is_kept(jpeg_store) -> None:
    # What makes a store safe to share with forked DataLoader workers.
    store, fields = jpeg_store
    store[[1, 5]]
    assert _fds_on(store.path) == 0
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(store))[3:6], fields[3:6])


_INHERITED: dict[str, FlowStore] = {}


def _read_in_child(first: int) -> bytes:
    return _INHERITED["store"][first : first + 5].tobytes()


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_forked_workers_read_the_store_they_inherit(jpeg_store) -> None:
    # Like DataLoader workers: the parent opened (and read) the store before forking.
    store, fields = jpeg_store
    _INHERITED["store"] = store
    with multiprocessing.get_context("fork").Pool(2) as pool:
        got = pool.map(_read_in_child, list(range(len(store) - 4)) * 3)
    assert got == [fields[i : i + 5].tobytes() for i in range(len(store) - 4)] * 3
    np.testing.assert_array_equal(store[:], fields)


def test_a_replaced_file_is_reread(tmp_path: Path) -> None:
    target = write(tmp_path / "v.flow", smooth_flow(3, 16, 16, seed=1), codec="png")
    store = open_flow_store(target)
    new = smooth_flow(3, 16, 16, seed=2)
    write(target, new, codec="png")
    np.testing.assert_array_equal(store[:], new)
    write(target, smooth_flow(4, 16, 16), codec="png")
    with pytest.raises(ValueError, match="was replaced by a store of shape"):
        store[0]


def test_closed_store_refuses_reads(jpeg_store, tmp_path: Path) -> None:
    with open_flow_store(jpeg_store[0].path) as store:
        store[0]
    with pytest.raises(ValueError, match="closed flow store"):
        store[0]


# --- the benchmark that chose the defaults -------------------------------------------------


@pytest.mark.slow
def test_bench_flow_store_quick_meets_the_targets(tmp_path: Path) -> None:
    # bench_flow.py --quick --store-only: 2 real clips (8 frames, 340 x 256) and 2 synthetic.
    out = tmp_path / "flow.json"
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_flow.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--quick", "--store-only", "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    record = json.loads(out.read_text())
    rows = {(r["clips"].split()[0], r["setting"]): r for r in record["store_rows"]}
    npy = rows[("real", "npy uint8 (today's cache)")]
    default = rows[("real", "store jpeg 93 (default)")]
    assert 0 < default["error_px"] <= 0.02
    assert default["bytes_per_pair"] <= min(8192, npy["bytes_per_pair"] / 10)
    assert rows[("real", "store png 6")]["error_px"] == 0 == npy["error_px"]
    assert "targets <= 8192 B, <= 0.02 px: met" in record["store_verdict"]
    assert record["rows"] == []  # --store-only: no flow methods timed
