"""attnvideo-audit: every status, the command line, resuming, workers, on the real clips."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from attnvideo.data import audit as audit_mod
from attnvideo.data import video as video_mod
from attnvideo.data.audit import AuditReport, AuditResult, audit_dataset, audit_video, main
from attnvideo.data.video import probe_cache_file

REAL = Path(__file__).parent / "data" / "real"
CLIPS = sorted(p.name for p in REAL.iterdir() if p.suffix in (".avi", ".mp4"))
SOCCER = "ucf101_SoccerJuggling__v_SoccerJuggling_g23_c01.avi"  # Xvid, 240 frames
WAVE = "hmdb51_wave__RATRACE_wave_f_nm_np1_fr_goo_37.avi"  # packed B-frames, 72 frames
H264 = "mmaction2__test.mp4"  # H.264 MP4, 300 frames
FAST = ["--num-segments", "3", "--quiet"]  # few reads: tests stay fast


def plain_decode(path: Path) -> tuple[list[np.ndarray], str | None]:
    """The ground truth of NOTICE.md, written out again: every frame, or the failure."""
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
    except (av.FFmpegError, OSError, ValueError) as err:
        return frames, str(err)
    return frames, None


def link(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).symlink_to(REAL / name)
    return folder


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def strip_time(results: list[AuditResult]) -> list[dict]:
    return [{**dataclasses.asdict(r), "seconds": None} for r in results]


def expected_status(path: Path, frames: list[np.ndarray], num_segments: int) -> str:
    """What the audit should say, from the full decode's frames held in memory."""
    try:
        if video_mod.probe_video(path).num_frames != len(frames):
            return "miscounted"
    except video_mod.VideoDecodeError:
        return "error"
    differ = False
    for plan in audit_mod._read_plans(len(frames), (num_segments,), 5).values():
        try:
            got = video_mod.read_frames(path, plan)
        except video_mod.VideoDecodeError:
            return "error"  # the audit stops at the first read that raises
        differ = differ or not np.array_equal(got, np.stack(frames)[plan])
    return "inexact" if differ else "ok"


def test_real_clips_statuses_match_a_full_decode(tmp_path: Path) -> None:
    root = link(tmp_path / "real", *CLIPS)
    report = audit_dataset(root, num_segments=(3,), progress=False, output=tmp_path / "a.jsonl")
    assert [r.path for r in report.results] == CLIPS
    for r in report.results:
        frames, failure = plain_decode(REAL / r.path)
        assert failure is None and r.num_frames == len(frames), r
        assert (r.height, r.width) == frames[0].shape[:2]
        assert r.status == expected_status(REAL / r.path, frames, 3), r
        if r.status in ("ok", "inexact"):  # at least the frames of 3 flow stacks of 5 fields
            assert r.checked_frames >= 18, r
    assert sorted(line["path"] for line in lines(tmp_path / "a.jsonl")) == CLIPS


def test_real_clips_all_ok_with_the_rewritten_reader(tmp_path: Path, capsys) -> None:
    root = link(tmp_path / "real", *CLIPS)
    out = tmp_path / "audit.jsonl"
    assert main([str(root), "--output", str(out), "--workers", "1", "--quiet"]) == 0  # T=25, 8
    records = lines(out)
    assert [r["status"] for r in records] == ["ok"] * len(CLIPS)
    assert all(r["fallbacks"] is not None and r["frames_decoded"] > 0 for r in records)
    assert capsys.readouterr().out.startswith(f"attnvideo-audit: {len(CLIPS)} videos: 6 ok\n")


def test_probe_cache_is_filled_for_the_datasets(tmp_path: Path) -> None:
    root = link(tmp_path / "real", *CLIPS)
    probes = tmp_path / "probes"
    out = tmp_path / "audit.jsonl"
    args = [str(root), "--output", str(out), "--probe-cache", str(probes), *FAST]
    assert main(args) == 0
    records = {r["path"]: r for r in lines(out)}
    for name in CLIPS:
        kept = json.loads(probe_cache_file(root / name, probes).read_text())
        assert kept["num_frames"] == records[name]["num_frames"] == records[name]["probe_frames"]


def test_list_file_audits_only_the_listed_videos(tmp_path: Path, capsys) -> None:
    root = link(tmp_path / "ucf" / "Juggling", SOCCER, WAVE, H264).parent
    listing = tmp_path / "testlist01.txt"  # UCF-101 style: CRLF, "<path> <label>"
    listing.write_bytes(f"Juggling/{SOCCER} 1\r\n\r\nJuggling/{WAVE} 2\r\n".encode())
    out = tmp_path / "out.jsonl"
    status = main([str(root), "--list", str(listing), "--output", str(out), *FAST])
    assert sorted(r["path"] for r in lines(out)) == sorted(
        [f"Juggling/{SOCCER}", f"Juggling/{WAVE}"]
    )
    assert capsys.readouterr().out.startswith("attnvideo-audit: 2 videos: 2 ok\n")
    assert status == 0 and [r["status"] for r in lines(out)] == ["ok", "ok"]


def test_unreadable_and_truncated_files_fail_the_run(tmp_path: Path, capsys) -> None:
    root = link(tmp_path / "data", SOCCER)
    (root / "x.avi").write_bytes(np.random.default_rng(0).bytes(3000))
    for name in (SOCCER, H264):  # the first half of the bytes, as a killed download leaves
        data = (REAL / name).read_bytes()
        (root / f"half_{name}").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.jsonl"
    assert main([str(root), "--output", str(out), "--workers", "1", *FAST]) == 1
    printed = capsys.readouterr().out
    found = {r["path"]: r for r in lines(out)}
    assert len(found) == 4
    for name, r in found.items():
        frames, failure = plain_decode(root / name)
        expect_unreadable = failure is not None or not frames
        assert (r["status"] == "unreadable") == expect_unreadable, r
        assert r["num_frames"] == len(frames)
        if expect_unreadable:
            assert f"  unreadable  {name}: full decode:" in printed
    assert found["x.avi"]["status"] == "unreadable"  # the MP4 lost its index (moov) too
    assert found[f"half_{H264}"]["status"] == "unreadable"
    half_avi = found[f"half_{SOCCER}"]  # AVI decodes up to the cut: fewer frames than stated
    assert half_avi["num_frames"] < half_avi["container_frames"] == 240


def test_resume_skips_done_videos_and_redoes_a_cut_last_line(tmp_path: Path, monkeypatch) -> None:
    root = link(tmp_path / "data", SOCCER, WAVE)
    (root / "x.avi").write_bytes(b"not a video")
    out = tmp_path / "out.jsonl"
    first = audit_dataset(root, output=out, num_segments=(3,), progress=False)
    assert first.resumed == 0 and len(lines(out)) == 3
    audited: list[str] = []
    real_audit = audit_mod.audit_video

    def spy(path, **kwargs):
        audited.append(kwargs["name"])
        return real_audit(path, **kwargs)

    monkeypatch.setattr(audit_mod, "audit_video", spy)
    again = audit_dataset(root, output=out, num_segments=(3,), progress=False)
    assert audited == [] and again.resumed == 3 and len(lines(out)) == 3
    assert strip_time(again.results) == strip_time(first.results)
    # A run killed while writing leaves half a line: that video is audited again.
    text = out.read_text()
    cut = text.rstrip("\n").rfind("\n") + 1
    last = json.loads(text[cut:])["path"]
    out.write_text(text[: cut + 40])
    third = audit_dataset(root, output=out, num_segments=(3,), progress=False)
    assert audited == [last] and third.resumed == 2
    assert sorted(r["path"] for r in lines(out)) == sorted(["x.avi", SOCCER, WAVE])
    assert str(third) == str(first)


def test_resume_refuses_a_file_that_is_not_an_audit(tmp_path: Path, capsys) -> None:
    root = link(tmp_path / "data", WAVE)
    out = tmp_path / "notes.jsonl"
    out.write_text("some notes\nmore\n")
    assert main([str(root), "--output", str(out), *FAST]) == 2
    assert "notes.jsonl:1 is not an audit result" in capsys.readouterr().err
    assert out.read_text() == "some notes\nmore\n"


def test_two_workers_give_the_results_of_one(tmp_path: Path) -> None:
    root = link(tmp_path / "data", SOCCER, WAVE, H264)
    (root / "x.avi").write_bytes(b"\0" * 100)
    one = audit_dataset(root, workers=1, num_segments=(3,), progress=False, output=tmp_path / "1")
    two = audit_dataset(root, workers=2, num_segments=(3,), progress=False, output=tmp_path / "2")
    assert strip_time(two.results) == strip_time(one.results)
    assert len(two.results) == 4 and two.counts["unreadable"] == 1


class PlainReader:
    """probe_video and read_frames written plainly over a full decode: exact by definition."""

    def __init__(self, path: Path) -> None:
        self.frames = np.stack(plain_decode(path)[0])

    def probe_video(self, path, *, cache_dir=None):
        return self  # what the audit asks of a probe: num_frames

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def read_frames(self, path, indices, *, stats=None):
        if stats is not None:  # as a reader with ReadStats counts: here one fallback a call
            stats.fallbacks += 1
            stats.frames_decoded += len(self.frames)
        return self.frames[np.asarray(indices)]


@dataclasses.dataclass
class Stats:
    seeks: int = 0
    frames_decoded: int = 0
    fallbacks: int = 0


def test_a_wrong_frame_is_reported_inexact(monkeypatch) -> None:
    reader = PlainReader(REAL / SOCCER)
    monkeypatch.setattr(video_mod, "probe_video", reader.probe_video)
    monkeypatch.setattr(video_mod, "read_frames", reader.read_frames)
    monkeypatch.setattr(video_mod, "ReadStats", Stats, raising=False)
    result = audit_video(REAL / SOCCER, num_segments=(3,))
    assert result.status == "ok" and result.reason is None  # no false alarm
    calls = len(audit_mod._read_plans(240, (3,), 5))  # one read per plan, stats summed
    assert (result.fallbacks, result.frames_decoded) == (calls, 240 * calls)

    def off_by_one(path, indices, **kwargs):
        indices = np.asarray(indices)
        return reader.frames[np.r_[indices[0] + 1, indices[1:]]]  # the next frame first

    monkeypatch.setattr(video_mod, "read_frames", off_by_one)
    result = audit_video(REAL / SOCCER, num_segments=(3,))
    assert result.status == "inexact", result
    assert "(is frame " in result.reason


def test_one_changed_pixel_is_reported_inexact(monkeypatch) -> None:
    reader = PlainReader(REAL / SOCCER)
    monkeypatch.setattr(video_mod, "probe_video", reader.probe_video)
    monkeypatch.delattr(video_mod, "ReadStats", raising=False)  # the reader before its rewrite

    def read_frames(path, indices):
        frames = reader.read_frames(path, indices)
        frames[-1, 5, 7, 1] ^= 1  # one bit of one pixel of one frame
        return frames

    monkeypatch.setattr(video_mod, "read_frames", read_frames)
    result = audit_video(REAL / SOCCER, num_segments=(3,))
    assert result.status == "inexact" and "differ from the full decode" in result.reason
    assert result.fallbacks is None and result.frames_decoded is None  # not reported


def test_probe_and_reader_failures_are_miscounted_and_error(monkeypatch) -> None:
    real_probe = video_mod.probe_video

    class Probe:
        def __init__(self, n: int) -> None:
            self.num_frames = n

    monkeypatch.setattr(
        video_mod, "probe_video", lambda p, **kw: Probe(real_probe(p, **kw).num_frames + 1)
    )
    result = audit_video(REAL / SOCCER, num_segments=(3,))
    assert result.status == "miscounted" and result.probe_frames == 241
    assert result.reason == "probe_video counts 241 frames, a full decode 240"

    def fail(path, indices, **kwargs):
        raise video_mod.VideoDecodeError(f"{path}: video ends before frame 7")

    monkeypatch.setattr(video_mod, "probe_video", real_probe)
    monkeypatch.setattr(video_mod, "read_frames", fail)
    result = audit_video(REAL / SOCCER, num_segments=(3,), name="soccer.avi")
    assert result.status == "error" and result.path == "soccer.avi"
    assert "read_frames (T=3 rgb) raised VideoDecodeError" in result.reason


def test_bad_arguments_exit_with_status_2(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "missing"), "--quiet"]) == 2
    assert "ROOT: no such folder" in capsys.readouterr().err
    assert main([str(tmp_path), "--list", str(tmp_path / "nope.txt"), "--quiet"]) == 2
    assert main([str(tmp_path), "--quiet"]) == 2  # no video under ROOT
    assert "no video file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), "--num-segments", "0"])
    assert exit_info.value.code == 2
    with pytest.raises(FileNotFoundError, match="root: no such folder"):
        audit_dataset(tmp_path / "missing")
    with pytest.raises(ValueError, match="num_segments"):
        audit_video(REAL / SOCCER, num_segments=[])


def test_report_counts_and_json_round_trip() -> None:
    results = [AuditResult("b.avi", "inexact", "x"), AuditResult("a.avi", "ok", num_frames=3)]
    report = AuditReport(results)
    assert report.counts == {"ok": 1, "unreadable": 0, "miscounted": 0, "inexact": 1, "error": 0}
    assert not report.ok and [r.path for r in report.bad] == ["b.avi"]
    assert [AuditResult.from_json(r.to_json()) for r in results] == results
    with pytest.raises(ValueError, match="status"):
        AuditResult("a.avi", "fine")


def test_runs_as_a_module(tmp_path: Path) -> None:
    root = link(tmp_path / "data", WAVE)
    out = tmp_path / "out.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "attnvideo.data.audit", str(root), "--output", str(out), *FAST],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.stdout.startswith("attnvideo-audit: 1 videos: 1 ok\n"), done.stderr
    assert done.returncode == 0 and lines(out)[0]["path"] == WAVE
