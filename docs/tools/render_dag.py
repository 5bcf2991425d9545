"""Write the generated diagrams into docs/architecture.md between their markers (`make dag`):

* the pipeline: `dvc dag --mermaid`, from dvc.yaml;
* who imports whom: the `import` statements of the packages in `har/` (lazy imports included).

With --check, exit 1 instead of writing when the document is stale.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- dvc dag --mermaid: begin -->", "<!-- dvc dag --mermaid: end -->"
IMPORTS_BEGIN, IMPORTS_END = "<!-- har imports --mermaid: begin -->", "<!-- har imports --mermaid: end -->"
# used by every package: drawing their edges would hide the structure
COMMON = {"config", "contracts", "errors", "io", "logging"}


def mermaid() -> str:
    dvc = Path(sys.executable).parent / "dvc"
    out = subprocess.run([str(dvc), "dag", "--mermaid"], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120).stdout.strip()
    return f"```mermaid\n{out}\n```"


def _unit(module: str) -> str | None:
    """``har.data.fetch`` → ``data``: the package (or top-level module) of har it belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "har" else None


def import_edges(root: Path = ROOT / "har") -> list[tuple[str, str]]:
    """(importer, imported) between har's packages and top-level modules, COMMON left out."""
    edges = set()
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).parts
        source = rel[0].removesuffix(".py")
        if source == "__init__":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
                if node.module == "har":  # from har import tracking
                    names = [f"har.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                target = _unit(name)
                if target and target != source and target not in COMMON:
                    edges.add((source, target))
    return sorted(edges)


def imports_mermaid() -> str:
    edges = import_edges()
    nodes = sorted({n for e in edges for n in e})
    lines = ["flowchart TD", *(f'\tp_{n}["har.{n}"]' for n in nodes),
             *(f"\tp_{a}-->p_{b}" for a, b in edges)]
    return "```mermaid\n" + "\n".join(lines) + "\n```"


def rendered(text: str, diagram: str, begin: str = BEGIN, end: str = END) -> str:
    head, rest = text.split(begin, 1)
    return f"{head}{begin}\n{diagram}\n{end}{rest.split(end, 1)[1]}"


def main() -> int:
    text = DOC.read_text()
    new = rendered(rendered(text, mermaid()), imports_mermaid(), IMPORTS_BEGIN, IMPORTS_END)
    if "--check" in sys.argv:
        return 0 if new == text else 1
    DOC.write_text(new)
    print(f"{DOC.relative_to(ROOT)}: diagrams regenerated from dvc.yaml and the code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
