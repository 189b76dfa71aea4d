"""The examples of docs/layers.md run as written and print what the page says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "layers.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_layers_guide_example_runs(index: int) -> None:
    code = BLOCKS[index]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        exec(compile(code, f"docs/layers.md block {index}", "exec"), {})
    # every ``print(...)  # value`` comment is exactly what that line printed, in order
    promised = re.findall(r"^print\(.*\)\s+#\s*(.+?)\s*$", code, flags=re.M)
    printed = stdout.getvalue().splitlines()
    assert promised, f"block {index} promises no output"
    assert printed == promised, f"block {index}: page promises {promised}, printed {printed}"
