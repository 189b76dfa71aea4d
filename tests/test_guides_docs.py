"""The examples of the data, flow and synthetic-data guides run as written.

Each page's blocks run in order in one fresh Python process (they start DataLoader
workers, which must not be forked from a test process that has compiled models), and
every ``print(...)  # value`` comment must be what that line printed; ``...`` in a
promised value matches anything.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["data.md", "flow.md", "synthetic.md"]
# Blocks that read the real UCF-101 (not available offline): shown, not run.
NEEDS_UCF101 = {"flow.md": {1, 2}}


def blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "docs" / page).read_text(), flags=re.S)


def promised(code: str) -> list[str]:
    return re.findall(r"^print\(.*\)\s+#\s*(.+?)\s*$", code, flags=re.M)


def matches(pattern: str, line: str) -> bool:
    parts = [re.escape(p) for p in pattern.split("...")]
    return re.fullmatch(".*".join(parts), line) is not None


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_guide_examples_run_and_print_what_the_page_says(page: str, tmp_path: Path) -> None:
    skip = NEEDS_UCF101.get(page, set())
    codes = blocks(page)
    assert codes, f"docs/{page} has no examples"
    assert all("UCF-101" in codes[i] for i in skip), "a skipped block no longer needs UCF-101"
    codes = [code for i, code in enumerate(codes) if i not in skip]
    marker = "----8<---- block {} ----8<----"
    script = "\n".join(
        f"print({marker.format(i)!r})\n{code}" for i, code in enumerate(codes)
    )  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert run.returncode == 0, f"docs/{page} examples failed:\n{run.stderr[-4000:]}"
    output = run.stdout.split("\n")
    starts = [output.index(marker.format(i)) for i in range(len(codes))] + [len(output)]
    for i, code in enumerate(codes):
        printed = [line for line in output[starts[i] + 1 : starts[i + 1]] if line]
        want = promised(code)
        if not want:
            continue  # a block that only sets things up
        assert len(printed) == len(want) and all(
            matches(w, p) for w, p in zip(want, printed, strict=True)
        ), f"docs/{page} block {i}: page promises {want}, printed {printed}"
