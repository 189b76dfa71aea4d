"""``attnvideo-predict``: classify video files with a finished ``attnvideo-train`` run.

    attnvideo-predict RUN_DIR VIDEO... [--run NAME] [--top-k K] [--figures-dir D]
    python -m attnvideo.predict RUN_DIR VIDEO...

The run folder describes itself (``run.json``): no training flags, no dataset and no
network are needed, and the folder may have been moved anywhere. Each video is sampled
as the run's evaluation samples its test videos (segments, crops, normalisation), only
the frames those snippets need are decoded (resized to the run's working resolution) and
flow is computed for those snippets only (cached, keyed by the video's absolute path,
size and modification time). One JSON line per video on stdout: the ``--top-k`` classes
with their probabilities and each stream's temporal weights over the segments. A video
that cannot be read is reported on stderr and the others are still classified; the exit
status is then 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["get_args_parser", "main"]


def _default_cache() -> Path:
    root = Path(os.environ.get("ATTNVIDEO_CACHE", Path.home() / ".cache" / "attnvideo"))
    return root / "predict-flow"


def get_args_parser() -> argparse.ArgumentParser:
    """The command line of ``attnvideo-predict``."""
    p = argparse.ArgumentParser(
        prog="attnvideo-predict",
        description="Classify video files with a finished attnvideo-train run.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run's --output-dir")
    p.add_argument("videos", nargs="+", type=Path, metavar="VIDEO", help="video files")
    p.add_argument(
        "--run", default=None, help="which run's streams (default: the last run trained)"
    )
    p.add_argument("--top-k", type=int, default=5, help="classes to print per video")
    p.add_argument(
        "--figures-dir",
        type=Path,
        default=None,
        help="also save each video's RGB segments with the spatial attention and the "
        "temporal weights there (PNG + GIF)",
    )
    p.add_argument(
        "--flow-cache",
        type=Path,
        default=None,
        help="folder caching each video's flow (default: $ATTNVIDEO_CACHE/predict-flow, "
        "~/.cache/attnvideo/predict-flow)",
    )
    p.add_argument("--no-cache", action="store_true", help="compute flow every time")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:1")
    p.add_argument(
        "--decode-threads",
        type=int,
        default=0,
        metavar="N",
        help="threads decoding each video (default 0: FFmpeg's choice, one per core)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``attnvideo-predict``.

    Returns:
        The exit status: 0, 1 when a video was unreadable, 2 for bad input.
    """
    from .data import VideoDecodeError
    from .engine import Predictor

    args = get_args_parser().parse_args(argv)
    if args.decode_threads < 0:
        message = f"--decode-threads: expected >= 0, got {args.decode_threads}"
        print(f"attnvideo-predict: error: {message}", file=sys.stderr)
        return 2
    if args.top_k < 1:
        message = f"--top-k: expected >= 1, got {args.top_k}"
        print(f"attnvideo-predict: error: {message}", file=sys.stderr)
        return 2
    cache = None if args.no_cache else (args.flow_cache or _default_cache())
    try:
        predictor = Predictor.from_run(
            args.run_dir,
            run=args.run,
            device=args.device,
            flow_cache=cache,
            decode_threads=args.decode_threads,
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"attnvideo-predict: error: {err}", file=sys.stderr)
        return 2
    failed = 0
    for video in args.videos:
        try:
            prediction = predictor.predict(video)
        except (FileNotFoundError, VideoDecodeError, ValueError) as err:
            print(f"attnvideo-predict: {video}: cannot read the video ({err})", file=sys.stderr)
            failed += 1
            continue
        line = prediction.to_json(args.top_k)
        if args.figures_dir is not None:
            line["figures"] = [str(p) for p in predictor.save_figures(prediction, args.figures_dir)]
        print(json.dumps(line), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
