"""MkDocs hooks (mkdocs.yml `hooks:`): the pages of the site that are generated, not written.

* **API reference**: one page per `har` package (and `flows`), found by walking the code, each a
  list of mkdocstrings `:::` blocks, so a new module shows up without editing the site.
* **HTTP API**: `docs/openapi.json` (what `har serve --openapi` writes) rendered as a static page:
  endpoints, parameters, request and response bodies, schemas. No JavaScript, no CDN.
* **Diagrams**: every ```mermaid flowchart in a page (the ones `make dag` writes from dvc.yaml and
  from the code) is laid out by Graphviz's `dot` at build time and inlined as SVG, so the site draws
  them offline; the markdown keeps mermaid, which GitHub renders.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "docs" / "openapi.json"
PACKAGES = ("har", "flows")
REFERENCE = "reference"
HTTP_API = "http-api.md"


# ---------------------------------------------------------------- API reference (from the code)

def _units(package: str) -> list[str]:
    """The top-level units of a package: its subpackages and modules (``har.data``, ``har.config``)."""
    base = ROOT / package
    return sorted(f"{package}.{p.stem}" for p in base.iterdir()
                  if not p.name.startswith("_") and (p.suffix == ".py" or (p / "__init__.py").is_file()))


def reference_pages() -> dict[str, str]:
    """{page path: markdown}: one page per unit of ``har`` (and one for ``flows``), documenting the
    unit and each public module inside it."""
    docstring_only = "\n    options:\n      members: false\n      show_root_heading: false"
    pages: dict[str, str] = {}
    for unit in ["har", *_units("har"), "flows"]:
        path = ROOT / unit.replace(".", "/")
        if unit == "har":  # the package's own docstring; everything else has a page of its own
            blocks = [f"::: har{docstring_only}"]
        elif path.is_dir():
            blocks = [f"::: {unit}{docstring_only}"]
            modules = sorted(m.stem for m in path.glob("*.py") if not m.name.startswith("_"))
            blocks += [f"::: {unit}.{m}" for m in modules]
        else:
            blocks = [f"::: {unit}"]
        pages[f"{REFERENCE}/{unit}.md"] = f"# `{unit}`\n\n" + "\n\n".join(blocks) + "\n"
    index = ["# API reference", "",
             "Generated from the docstrings of the code (mkdocstrings); one page per package. "
             "[Architecture](../architecture.md) says what each package is for.", ""]
    index += [f"- [`{Path(p).stem}`]({Path(p).name})" for p in pages]
    pages[f"{REFERENCE}/index.md"] = "\n".join(index) + "\n"
    return pages


# ---------------------------------------------------------------- HTTP API (from openapi.json)

def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _type(schema: dict[str, Any]) -> str:
    """A short human type: `PredictRequest`, `array of number`, `string | null`."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"[{name}](#schema-{name.lower()})"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " | ".join(_type(s) for s in schema[key])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " | ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    return " | ".join(kind) if isinstance(kind, list) else str(kind)


def _cell(text: Any) -> str:
    return html.escape(str(text)).replace("|", "\\|").replace("\n", " ")


def _constraints(schema: dict[str, Any]) -> str:
    keys = ("default", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems",
            "maxItems", "minLength", "maxLength", "pattern")
    return ", ".join(f"{k} {json.dumps(schema[k])}" for k in keys if k in schema)


def _fields(schema: dict[str, Any]) -> list[str]:
    props = schema.get("properties", {})
    if not props:
        return [f"Type: {_type(schema)}."]
    required = set(schema.get("required", []))
    rows = ["| field | type | required | description |", "|---|---|---|---|"]
    for name, prop in props.items():
        note = " ".join(x for x in (prop.get("description", ""), _constraints(prop)) if x)
        rows.append(f"| `{name}` | {_type(prop)} | {'yes' if name in required else 'no'} | {_cell(note)} |")
    return rows


def _body(content: dict[str, Any]) -> list[str]:
    out = []
    for media, spec in content.items():
        out.append(f"`{media}`: {_type(spec.get('schema', {}))}")
    return out


def http_api_page(spec: dict[str, Any]) -> str:
    info = spec.get("info", {})
    lines = [f"# HTTP API: {info.get('title', '')} (version {info.get('version', '?')})", "",
             info.get("description", ""), "",
             f"Generated from [`openapi.json`](openapi.json) (OpenAPI {spec.get('openapi')}), which "
             "`har serve --openapi docs/openapi.json` writes from the app; a running server serves the "
             "same document at `GET /openapi.json` and interactive docs at `/docs`. How the endpoints "
             "behave, with examples: [Serving](serving.md).", "", "## Endpoints", "",
             "| method | path | summary |", "|---|---|---|"]
    ops = [(path, method, op) for path, item in spec.get("paths", {}).items()
           for method, op in item.items() if method in ("get", "post", "put", "patch", "delete")]
    for path, method, op in ops:
        anchor = re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-")
        lines.append(f"| `{method.upper()}` | [`{path}`](#{anchor}) | {_cell(op.get('summary', ''))} |")
    for path, method, op in ops:
        anchor = re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-")
        lines += ["", f"## `{method.upper()} {path}` {{#{anchor}}}", "", op.get("description", "") or
                  op.get("summary", ""), ""]
        params = op.get("parameters", [])
        if params:
            lines += ["**Parameters**", "", "| name | in | type | required | description |",
                      "|---|---|---|---|---|"]
            for p in params:
                note = " ".join(x for x in (p.get("description", ""), _constraints(p.get("schema", {}))) if x)
                lines.append(f"| `{p['name']}` | {p.get('in')} | {_type(p.get('schema', {}))} | "
                             f"{'yes' if p.get('required') else 'no'} | {_cell(note)} |")
            lines.append("")
        body = op.get("requestBody")
        if body:
            lines += [f"**Request body** ({'required' if body.get('required') else 'optional'}): "
                      + "; ".join(_body(body.get("content", {}))), ""]
        lines += ["**Responses**", "", "| status | meaning | body |", "|---|---|---|"]
        for status, resp in op.get("responses", {}).items():
            lines.append(f"| {status} | {_cell(resp.get('description', ''))} | "
                         f"{'; '.join(_body(resp.get('content', {}))) or '—'} |")
    lines += ["", "## Schemas"]
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        lines += ["", f"### `{name}` {{#schema-{name.lower()}}}", "", schema.get("description", ""), "",
                  *_fields(schema)]
        examples = [(k, v["examples"][0]) for k, v in schema.get("properties", {}).items()
                    if v.get("examples")]
        if examples:
            lines += ["", "Example values: " + "; ".join(f"`{k}` = `{json.dumps(v)}`" for k, v in examples)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- diagrams (mermaid → Graphviz SVG)

MERMAID = re.compile(r"^```mermaid\n(.*?)^```\s*$", re.S | re.M)
NODE = re.compile(r'^\s*(\w+)\s*\[\s*"?(.*?)"?\s*\]\s*$')
EDGE = re.compile(r"^\s*(\w+)\s*-->\s*(\w+)\s*$")


def mermaid_to_dot(source: str) -> str:
    """A mermaid flowchart (nodes ``id["label"]``, edges ``a-->b``) as Graphviz DOT; anything else in
    it is an error, so a diagram this cannot draw fails the strict build instead of vanishing."""
    lines = [line for line in source.strip().splitlines()
             if line.strip() and not line.strip().startswith("%%")]  # %% is a mermaid comment
    head = lines[0].split()
    if head[0] not in ("flowchart", "graph"):
        raise PluginError(f"mermaid: only flowcharts are drawn, not {head[0]!r}")
    rankdir = {"TD": "TB", "TB": "TB", "LR": "LR", "RL": "RL", "BT": "BT"}[head[1] if len(head) > 1 else "TD"]
    nodes, edges = {}, []
    for line in lines[1:]:
        if m := EDGE.match(line):
            edges.append(m.groups())
        elif m := NODE.match(line):
            nodes[m.group(1)] = m.group(2)
        else:
            raise PluginError(f"mermaid: cannot draw the line {line.strip()!r}")
    out = [f"digraph {{ rankdir={rankdir}; bgcolor=transparent; nodesep=0.3; ranksep=0.35;",
           '  node [shape=box, style="rounded,filled", fillcolor="#e8eaf6", color="#3f51b5", '
           'fontname="Helvetica", fontsize=11];',
           '  edge [color="#5c6bc0", arrowsize=0.7];']
    out += [f'  {k} [label="{v}"];' for k, v in nodes.items()]
    out += [f"  {a} -> {b};" for a, b in edges]
    return "\n".join(out) + "\n}\n"


def render_svg(dot_source: str) -> str:
    dot = shutil.which("dot")
    if dot is None:
        raise PluginError("Graphviz `dot` is not installed: `make system-deps` (Debian package graphviz)")
    svg = subprocess.run([dot, "-Tsvg"], input=dot_source, capture_output=True, text=True, check=True,
                         timeout=60).stdout
    return svg[svg.index("<svg"):]  # drop the XML prolog and doctype: inline SVG in HTML


def draw_mermaid(markdown: str) -> str:
    def replace(m: re.Match[str]) -> str:
        svg = render_svg(mermaid_to_dot(m.group(1)))
        return f'<figure class="har-diagram" markdown="0">\n{svg}\n</figure>\n'

    return MERMAID.sub(replace, markdown)


# ---------------------------------------------------------------- the hooks

def on_config(config: Any) -> Any:
    """The generated reference pages in the navigation, after the written pages."""
    pages = [p for p in reference_pages() if not p.endswith("index.md")]
    config["nav"].append({"API reference": [f"{REFERENCE}/index.md", *pages]})
    return config


def on_files(files: Files, config: Any) -> Files:
    for path, text in reference_pages().items():
        files.append(File.generated(config, path, content=text))
    files.append(File.generated(config, HTTP_API, content=http_api_page(json.loads(OPENAPI.read_text()))))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    return draw_mermaid(markdown) if "```mermaid" in markdown else markdown
