"""docs/train-own-data.md runs as written: folder of videos -> attnvideo-flow ->
attnvideo-train -> attnvideo-predict, and its Python block.

The test lays out a tiny ``my_videos`` folder as the page describes (two classes of
32x32 clips, real .mp4 files), then runs every ``bash`` block of the page in order, in
one folder. The only change to the page's commands: flags appended to ``attnvideo-train``
to make the run tiny (the last value of a flag wins). A command not installed in this
environment (a checkout not re-installed since the command was added) runs as
``python -m`` of its module.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "train-own-data.md"
TINY = (
    "--backbone test_resnet --epochs 1 --input-size 32 --resize 32 --num-segments 2 "
    "--test-segments 2 --new-length 1 --batch-size 2 --workers 0 --figures 1 --lr 0.01"
)
MODULES = {
    "attnvideo-flow": "attnvideo.data.flow",
    "attnvideo-train": "attnvideo.train",
    "attnvideo-predict": "attnvideo.predict",
}


def _write_clip(path: Path, direction: int, seed: int) -> None:
    """A 12-frame 32x32 .mp4: a bright square moving right (+1) or left (-1)."""
    import av

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        start = int(rng.integers(4, 8)) if direction > 0 else int(rng.integers(16, 20))
        for i in range(12):
            img = np.full((32, 32, 3), 40, np.uint8)
            x = start + direction * i
            img[10:20, x : x + 8] = 230
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode())


def _my_videos(folder: Path) -> None:
    lists = {"train": [], "test": []}
    for label, (name, direction) in enumerate((("cooking", 1), ("sweeping", -1))):
        for i in range(1, 6):
            rel = f"{name}/clip_{i:04d}.mp4"
            _write_clip(folder / "my_videos" / rel, direction, seed=10 * label + i)
            lists["test" if i == 1 else "train"].append(f"{rel} {label}")
    for split, lines in lists.items():
        (folder / "my_videos" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    (folder / "my_videos" / "classes.txt").write_text("cooking\nsweeping\n")


def _commands(page: str) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", page, flags=re.S)
    return [line for b in blocks for line in b.replace("\\\n", " ").splitlines() if line.strip()]


def _argv(command: str) -> list[str]:
    argv = shlex.split(command)
    if argv[0] == "attnvideo-train":
        argv += TINY.split()
    if shutil.which(argv[0]) is None:
        argv = [sys.executable, "-m", MODULES[argv[0]], *argv[1:]]
    return argv


@pytest.mark.slow
def test_the_page_walks_from_a_folder_of_videos_to_predictions(tmp_path: Path) -> None:
    page = PAGE.read_text()
    _my_videos(tmp_path)
    commands = _commands(page)
    assert [c.split()[0] for c in commands] == list(MODULES), commands
    env = dict(os.environ, OMP_NUM_THREADS="1", ATTNVIDEO_CACHE=str(tmp_path / "cache"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    outputs = []
    for command in commands:
        run = subprocess.run(_argv(command), cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=600)  # fmt: skip
        assert run.returncode == 0, f"{command}\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}"
        outputs.append(run.stdout)
    run_dir = tmp_path / "runs" / "mine"
    assert json.loads((run_dir / "run.json").read_text())["classes"] == ["cooking", "sweeping"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics) == ["stacnn"] and set(metrics["stacnn"]) == {"rgb", "flow", "fused"}
    line = json.loads(outputs[-1].strip().splitlines()[-1])
    assert line["video"] == "my_videos/cooking/clip_0001.mp4" and line["run"] == "stacnn"
    assert [name for name, _ in line["top"]] in (["cooking", "sweeping"], ["sweeping", "cooking"])
    assert set(line["temporal_weights"]) == {"rgb", "flow"}
    assert all(Path(tmp_path, f).is_file() for f in line["figures"])
    # the page's Python block, in the same folder
    code = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    assert len(code) == 1
    run = subprocess.run([sys.executable, "-c", code[0]], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    assert run.stdout.split() == ["True"]
