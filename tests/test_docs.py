"""Docs are part of the product: every public name has an API page, every page builds."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api"

# Public namespaces whose ``__all__`` is the public API.
NAMESPACES = [
    "attnvideo",
    "attnvideo.functional",
    "attnvideo.layers",
    "attnvideo.models",
    "attnvideo.data",
    "attnvideo.viz",
    "attnvideo.engine",
    "attnvideo.train",
    "attnvideo.predict",
]


def _documented() -> set[str]:
    """Dotted names that some docs/api page renders with ``::: name``."""
    names: set[str] = set()
    for page in API.glob("*.md"):
        names.update(re.findall(r"^:::\s+([\w.]+)", page.read_text(), flags=re.M))
    return names


def _covers(documented: set[str], module: str, name: str) -> bool:
    obj = getattr(importlib.import_module(module), name)
    home = getattr(obj, "__module__", module)
    candidates = {f"{module}.{name}", f"{home}.{name}", module, home}
    # A whole-module page (``::: attnvideo.functional``) documents its members too.
    return bool(candidates & documented)


@pytest.mark.parametrize("module", NAMESPACES)
def test_every_public_name_has_an_api_page(module: str) -> None:
    mod = importlib.import_module(module)
    public = getattr(mod, "__all__", None)
    assert public, f"{module} must define __all__"
    documented = _documented()
    missing = [n for n in public if n != "__version__" and not _covers(documented, module, n)]
    assert not missing, f"{module}: no docs/api page renders {missing}"


def test_every_doc_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = [p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")]
    missing = [p for p in pages if p not in nav]
    assert not missing, f"pages not in mkdocs.yml nav: {missing}"
