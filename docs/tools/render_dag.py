"""Write `dvc dag --mermaid` into docs/architecture.md between its markers (`make dag`).

With --check, exit 1 instead of writing when the document is stale.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- dvc dag --mermaid: begin -->", "<!-- dvc dag --mermaid: end -->"


def mermaid() -> str:
    dvc = Path(sys.executable).parent / "dvc"
    out = subprocess.run([str(dvc), "dag", "--mermaid"], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120).stdout.strip()
    return f"```mermaid\n{out}\n```"


def rendered(text: str, diagram: str) -> str:
    head, rest = text.split(BEGIN, 1)
    return f"{head}{BEGIN}\n{diagram}\n{END}{rest.split(END, 1)[1]}"


def main() -> int:
    text = DOC.read_text()
    new = rendered(text, mermaid())
    if "--check" in sys.argv:
        return 0 if new == text else 1
    DOC.write_text(new)
    print(f"{DOC.relative_to(ROOT)}: diagram regenerated from dvc.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
