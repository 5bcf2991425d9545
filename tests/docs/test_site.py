"""The documentation site builds with `mkdocs build --strict` (a broken link or a missing module
fails it), its generated pages are there (API reference, HTTP API, diagrams drawn offline), and no
page loads anything from the internet."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("dot") is None,
                                reason="Graphviz `dot` missing: make system-deps installs it")


def build(project: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project), "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "-d", str(site)],
                          cwd=project, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    res = build(REPO, out)
    assert res.returncode == 0, res.stdout + res.stderr
    return out


def test_generated_pages(site: Path) -> None:
    # the API reference: one page per package, from the docstrings
    registry = (site / "reference" / "har.registry" / "index.html").read_text()
    assert "promotion_line" in registry and "Registry operations on" in registry
    for package in ("har.data", "har.stages", "har.training", "flows"):
        assert (site / "reference" / package / "index.html").is_file(), package
    # the HTTP API: every operation of the OpenAPI document
    spec = json.loads((REPO / "docs" / "openapi.json").read_text())
    page = (site / "http-api" / "index.html").read_text()
    for path, item in spec["paths"].items():
        for method in item:
            assert f"{method.upper()} {path}" in page, (method, path)
    for name in spec["components"]["schemas"]:
        assert f'id="schema-{name.lower()}"' in page, name
    assert (site / "openapi.json").is_file()
    # diagrams: SVG drawn at build time, no mermaid left for a browser to fetch a renderer for
    architecture = (site / "architecture" / "index.html").read_text()
    assert architecture.count('<figure class="har-diagram"') == 2 and "language-mermaid" not in architecture
    assert ">register<" in architecture and ">har.stages<" in architecture


def test_no_page_loads_from_the_internet(site: Path) -> None:
    external = re.compile(r'<(?:script|link|img)[^>]+(?:src|href)="(?:https?:)?//', re.I)
    offenders = [str(p.relative_to(site)) for p in site.rglob("*.html") if external.search(p.read_text())]
    assert not offenders, offenders


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    project = tmp_path / "project"
    for name in ("docs", "har", "flows"):
        shutil.copytree(REPO / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "mkdocs.yml", project / "mkdocs.yml")
    page = project / "docs" / "where-to-look.md"
    page.write_text(page.read_text() + "\nSee [the missing page](no-such-page.md).\n")
    res = build(project, tmp_path / "site")
    assert res.returncode != 0
    assert "no-such-page.md" in res.stdout + res.stderr
