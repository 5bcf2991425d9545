"""The pipeline check's report, for CI's job summary and for `make ci-report` (docs/ci.md).

    python .ci/pipeline_report.py [--base main] [--out report.md] [--workdir DIR]

In a throwaway clone of this repository: `dvc repro` for the base (the merge base of --base and the
commit under test), then for the commit under test (uncommitted changes to tracked files included),
both with params.yaml's ``ci.overrides`` (a small subset), the second run starting from the first
one's dvc.lock so DVC re-runs only what the change touches; then `har promote --dry-run`. The report
(markdown, on stdout or --out) holds `dvc params diff` (the change's own params, without the CI
overrides), `dvc metrics diff` (base run → change run), the validation suites and the promotion
gate's verdict. Exit status: 0 when both pipelines ran (whatever the verdict), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BIN = Path(sys.executable).parent  # dvc and har of this environment
# never report to (or through) the servers of the shell this runs in: the clone has its own stores
DROPPED_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "PREFECT_API_URL", "DVC_REMOTE")
BASE_RUN, HEAD_RUN = "ci-report/base", "ci-report/change"
VALIDATION_REPORTS = {"recordings": "validate.report_path", "windows": "validate.windows_report_path"}


class ReportError(RuntimeError):
    pass


def git(cwd: Path, *args: str, check: bool = True) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    if check and res.returncode != 0:
        raise ReportError(f"git {' '.join(args)}: {res.stderr.strip()}")
    return res.stdout.strip()


@dataclass
class Run:
    name: str
    commit: str
    ran: list[str] = field(default_factory=list)
    validation: dict[str, str] = field(default_factory=dict)
    output: str = ""


class Clone:
    """The throwaway clone where both pipelines run, with its own DVC cache and MLflow store."""

    def __init__(self, repo: Path, work: Path) -> None:
        self.dir = work / "repo"
        # --shared reads objects from the source repository, also the unreferenced stash commit
        git(work, "clone", "--quiet", "--shared", "--no-checkout", str(repo), str(self.dir))
        git(self.dir, "config", "user.name", "ci-report")
        git(self.dir, "config", "user.email", "ci-report@localhost")
        self.env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
        self.env.update(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                        # `har` runs the checked-out code (base, then change), not an installed copy
                        PYTHONPATH=str(self.dir), DVC_NO_ANALYTICS="1", GX_ANALYTICS_ENABLED="false",
                        MLFLOW_ENABLE_TELEMETRY="false", DO_NOT_TRACK="1")

    def run(self, *cmd: str, timeout: int = 3600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(cmd), cwd=self.dir, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def dvc(self, *args: str) -> str:
        res = self.run(str(BIN / "dvc"), *args)
        if res.returncode != 0:
            raise ReportError(f"dvc {' '.join(args)} failed:\n{res.stdout[-4000:]}{res.stderr[-4000:]}")
        return res.stdout

    def params(self) -> dict[str, Any]:
        return yaml.safe_load((self.dir / "params.yaml").read_text())


def set_dotted(doc: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[leaf] = value


def lookup(doc: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        doc = doc[part]
    return doc


def reproduce(clone: Clone, run: Run, overrides: dict[str, Any], lock_from: str | None) -> None:
    """Check ``run.commit`` out, apply the subset, `dvc repro`, and commit the metrics as a branch."""
    git(clone.dir, "checkout", "--quiet", "--force", run.commit)
    if lock_from:  # the lock describes the outputs in the workspace: the previous run's
        git(clone.dir, "checkout", lock_from, "--", "dvc.lock")
    params = clone.params()
    for key, value in overrides.items():
        set_dotted(params, key, value)
    (clone.dir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    res = clone.run(str(BIN / "dvc"), "repro")
    run.output = res.stdout + res.stderr
    run.ran = [line.split("'")[1] for line in res.stdout.splitlines() if line.startswith("Running stage '")]
    for suite, key in VALIDATION_REPORTS.items():
        path = clone.dir / lookup(params, key)
        failed = path.with_suffix(".failed.json")
        # a failing suite writes *.failed.json beside the last good report: the newer one is this run's
        newer = failed.is_file() and (not path.is_file() or failed.stat().st_mtime > path.stat().st_mtime)
        report = failed if newer else path
        if report.is_file():
            doc = json.loads(report.read_text())
            run.validation[suite] = (f"passed: {doc['evaluated']} expectations met" if doc["success"] else
                                     f"FAILED: {len(doc['failures'])} of {doc['evaluated']} expectations")
    if res.returncode != 0:
        raise ReportError(f"dvc repro failed for the {run.name} ({run.commit[:10]}):\n{run.output[-6000:]}")
    # metrics are git-ignored outputs: force-add them so `dvc metrics diff` can read them per commit
    shown = json.loads(clone.dvc("metrics", "show", "--json"))
    # tune/dvc.yaml's metrics are listed too, though that stage only runs when asked: keep what exists
    files = sorted(f for f in {f for rev in shown.values() for f in rev.get("data", {})}
                   if (clone.dir / f).is_file())
    git(clone.dir, "add", "--force", "params.yaml", "dvc.lock", *files)
    git(clone.dir, "commit", "--quiet", "--allow-empty", "-m", f"ci-report: {run.name} on the CI subset")
    git(clone.dir, "branch", "--force", BASE_RUN if run.name == "base" else HEAD_RUN)


def promotion(clone: Clone) -> dict[str, Any]:
    """`har promote --dry-run`: the change's model gated against the base's (the champion)."""
    res = clone.run(str(BIN / "har"), "promote", "--dry-run", timeout=600)
    if res.returncode != 0:
        return {"error": (res.stdout + res.stderr).strip()[-2000:]}
    path = clone.dir / lookup(clone.params(), "registry.report_path")
    return {**json.loads(path.read_text()).get("promotion", {}), "line": res.stdout.strip().splitlines()[-1]}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def metrics_table(diff: dict[str, Any]) -> str:
    """`dvc metrics diff --json` as a table of the numbers that changed. Strings (run ids, model
    URIs) differ between any two runs and say nothing about the change: left out."""
    rows = []
    for path, metrics in sorted(diff.items()):
        for name, d in sorted(metrics.items()):
            old, new = d.get("old"), d.get("new")
            if not (_number(old) or _number(new)):
                continue
            delta = d.get("diff")
            rows.append(f"| {path} | {name} | {'—' if old is None else f'{old:.4g}'} | "
                        f"{'—' if new is None else f'{new:.4g}'} | "
                        f"{f'{delta:+.4g}' if _number(delta) else '—'} |")
    if not rows:
        return ""
    return "\n".join(["| file | metric | base | change | Δ |", "|---|---|---|---|---|", *rows])


def markdown(base: Run, head: Run, label: str, overrides: dict[str, Any], params_diff: str,
             metrics_diff: str, decision: dict[str, Any], dirty: bool) -> str:
    subset = ", ".join(f"`{k}={json.dumps(v)}`" for k, v in overrides.items())
    lines = [f"## Pipeline check: {head.commit[:10]} against {base.commit[:10]} ({label})", "",
             f"Both pipelines ran `dvc repro` on the CI subset (params.yaml `ci.overrides`: {subset})."]
    if dirty:
        lines.append("The change includes uncommitted edits to tracked files (not untracked files).")
    lines += ["", "### Params diff (the change itself)", "",
              params_diff.strip() or "No params changed.", "",
              "### Metrics diff (base run → change run, on the subset)", "",
              metrics_diff.strip() or "No metric changed.", "",
              "### Validation suites", "", "| suite | base | change |", "|---|---|---|"]
    for suite in VALIDATION_REPORTS:
        lines.append(f"| {suite} | {base.validation.get(suite, '—')} | {head.validation.get(suite, '—')} |")
    lines += ["", "### Promotion gate (dry run: nothing moves)", ""]
    if "error" in decision:
        lines += ["`har promote --dry-run` failed:", "", "```", decision["error"], "```"]
    else:
        verdict = "would promote" if decision.get("passed") else "would reject"
        f1 = decision.get("challenger_macro_f1")
        champ = decision.get("champion_macro_f1")
        lines += [f"**{verdict}** version {decision.get('version')} (the change's model, test macro-F1 "
                  f"{f1 if f1 is None else f'{f1:.4f}'}) against champion v{decision.get('champion_before')} "
                  f"(the base's model, {champ if champ is None else f'{champ:.4f}'}):", ""]
        lines += [f"- {reason}" for reason in decision.get("reasons", [])]
    lines += ["", "### Stages", "",
              f"- base: {', '.join(base.ran) or 'none'}",
              f"- change: {', '.join(head.ran) or 'none: nothing the pipeline depends on changed'}", ""]
    return "\n".join(lines)


def default_base() -> str:
    """The pull request's base branch in GitHub Actions, else main."""
    ref = os.environ.get("GITHUB_BASE_REF")
    return f"origin/{ref}" if ref else "main"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=default_base(), help="branch or commit to compare against")
    ap.add_argument("--out", type=Path, help="also write the report here")
    ap.add_argument("--workdir", type=Path, help="keep the clone here (default: a temp dir, removed)")
    args = ap.parse_args(argv)

    repo = Path(git(Path.cwd(), "rev-parse", "--show-toplevel"))
    head_commit = git(repo, "stash", "create") or git(repo, "rev-parse", "HEAD")  # tracked edits included
    dirty = head_commit != git(repo, "rev-parse", "HEAD")
    base_commit = git(repo, "merge-base", args.base, "HEAD")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="har-ci-report-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        clone = Clone(repo, work)
        git(clone.dir, "checkout", "--quiet", "--force", head_commit)
        overrides = clone.params().get("ci", {}).get("overrides", {})  # the change's subset, for both runs
        # short revisions: they are the table's column headers
        params_diff = clone.dvc("params", "diff", base_commit[:10], head_commit[:10], "--md")
        base, head = Run("base", base_commit), Run("change", head_commit)
        print(f"pipeline report: base {base_commit[:10]}, change {head_commit[:10]}, clone {clone.dir}",
              file=sys.stderr)
        reproduce(clone, base, overrides, lock_from=None)
        reproduce(clone, head, overrides, lock_from=BASE_RUN)
        metrics_diff = metrics_table(json.loads(clone.dvc("metrics", "diff", BASE_RUN, HEAD_RUN, "--json")))
        report = markdown(base, head, f"merge base with {args.base}", overrides, params_diff, metrics_diff,
                          promotion(clone), dirty)
    except ReportError as err:
        report = f"## Pipeline check failed\n\n```\n{err}\n```\n"
        print(report)
        if args.out:
            args.out.write_text(report)
        return 1
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
