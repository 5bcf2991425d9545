"""Headless Chromium (Debian's `chromium`) for checking web UIs as a person would: a screenshot to
look at and the rendered page's visible text to assert on."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage", "--disable-sync",
         "--hide-scrollbars", "--run-all-compositor-stages-before-draw"]


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "noscript", "svg"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "noscript", "svg") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.parts.append(data.strip())


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("Debian's chromium is not installed (apt-get install chromium); .ci/run "
                           "installs it")
    return path


def render(url: str, png: Path, *, budget_ms: int = 30000, size: tuple[int, int] = (1440, 1000)) -> str:
    """Screenshot ``url`` into ``png`` and return the visible text of the rendered page.

    ``--virtual-time-budget`` lets the single-page apps fetch their data and render before the
    capture (virtual time waits for pending network requests)."""
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="har-chromium-") as profile:
        common = [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
                  f"--virtual-time-budget={budget_ms}"]
        subprocess.run([*common, f"--screenshot={png}", url], capture_output=True, timeout=120, check=True)
        dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120,
                             check=True).stdout
    parser = _Text()
    parser.feed(dom)
    return " ".join(parser.parts)
