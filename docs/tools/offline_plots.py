"""`make plots`: `dvc plots show` that renders without internet.

DVC's HTML page loads Vega, Vega-Lite and Vega-Embed from a CDN, so offline its charts stay blank.
This writes an HTML template with those libraries inlined (the bundle vl-convert ships, the one
Altair uses for offline pages) and runs `dvc plots show --html-template` with it. Arguments after
the script name go to `dvc plots show` (e.g. targets, `-o DIR`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / ".dvc" / "tmp" / "offline-plots-template.html"  # .dvc/tmp is git-ignored by DVC

PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>har: DVC plots</title>
<script>{bundle}</script>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-spacing: 15px; }}
</style>
</head>
<body>
<h1>har: DVC plots</h1>
{{plot_divs}}
</body>
</html>"""


def write_template(path: Path = TEMPLATE) -> Path:
    """The template: DVC fills ``{plot_divs}``; its ``{scripts}`` (the CDN tags) is left out on purpose."""
    import vl_convert

    path.parent.mkdir(parents=True, exist_ok=True)
    # the default snippet sets window.vegaEmbed, which DVC's plot divs call
    path.write_text(PAGE.format(bundle=vl_convert.javascript_bundle()))
    return path


def main(args: list[str]) -> int:
    template = write_template()
    dvc = Path(sys.executable).parent / "dvc"
    return subprocess.run([str(dvc), "plots", "show", "--html-template", str(template), *args],
                          cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
