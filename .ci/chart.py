#!/usr/bin/env python3
"""Lint and render charts/ct-pipeline with Helm v4's own engine, offline (helm-python-sdk 0.2.2,
libhelm), and run the chart's checks. Run it with the Python of a venv that has
helm-python-sdk==0.2.2 (.ci/chart sets one up).

  chart.py lint -f VALUES [-f VALUES...] [-n NAMESPACE]
      helm lint; fails on any warning or error.
  chart.py render -f VALUES [-f ...] [--set K=V ...] [-n NAMESPACE] [--release NAME] --out DIR
      One object per file, laid out like the repository so that tools reading tasks/ and
      pipeline/ read the rendered chart instead: DIR/tasks/*.yaml, DIR/pipeline/ct-pipeline.yaml,
      DIR/pipeline/triggers/*.yaml, DIR/pipeline/rbac/*.yaml (each object rendered from a
      repository file gets that file's name), DIR/other/<kind>-<name>.yaml (Route, Ingress) and
      DIR/NOTES.txt. DIR must not exist or be empty.
  chart.py package --out DIR
      helm package: DIR/ct-pipeline-<version>.tgz, the linked files inside. `render --chart TGZ`
      renders the archive instead of the directory.
  chart.py drift DIR [--canonical] [--complete] [--expect FILE]
      Compare every rendered object with the repository file it comes from (chart_drift.py).
  chart.py schema-cases [--base VALUES] CASE.yaml...
      Each case (values merged over --base) must fail to render with every message its
      `# expect: TEXT` lines name.

Exit codes: 0 ok, 1 a check failed, 2 usage.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
from pathlib import Path

import helm_python as helm
from helm_python.chart import Chart, lint, package

sys.dont_write_bytecode = True  # no __pycache__ in .ci/
sys.path.insert(0, str(Path(__file__).resolve().parent))
import chart_drift  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "ct-pipeline"
MAX_FILE = 1 << 20  # every file read here is small; a bigger one is a mistake
SOURCE_MARK = re.compile(r"^# ct-steps-source: (\S+)$", re.M)
DOC_SEPARATOR = re.compile(r"^---[ \t]*$", re.M)


class CheckFailed(Exception):
    """A check failed: one line naming what and how to fix it."""


def read_text(path: Path) -> str:
    with open(path, "rb") as f:
        data = f.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise CheckFailed(f"{path}: larger than {MAX_FILE} bytes")
    return data.decode("utf-8")


def load_yaml(path: Path) -> dict:
    """A YAML mapping, parsed by Helm's own YAML reader (sigs.k8s.io/yaml, as the API server)."""
    try:
        return helm.values_from_yaml(read_text(path))
    except helm.HelmError as e:
        raise CheckFailed(f"{path}: not a YAML mapping: {e}") from e


@contextlib.contextmanager
def helm_log_filtered():
    """libhelm logs an INFO line on fd 2 for each symlink it follows (files/tasks, files/pipeline:
    expected); pass every other line through."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            for line in log.read(MAX_FILE).decode("utf-8", "replace").splitlines():
                if "found symbolic link in path" not in line:
                    print(line, file=sys.stderr)


def deep_merge(base: dict, over: dict) -> dict:
    """Helm's precedence for -f files: maps merge, everything else is replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def values_from(files: list[str], sets: list[str]) -> dict:
    values: dict = {}
    for f in files:
        values = deep_merge(values, load_yaml(Path(f)))
    for s in sets:
        values = deep_merge(values, helm.parse_set_string(s))
    return values


def render(values: dict, namespace: str, release: str, chart: Path = CHART) -> dict[str, str]:
    """Template path -> rendered text; raises helm.HelmError with Helm's message."""
    with helm_log_filtered(), Chart.load(chart) as loaded:
        return loaded.render(values, name=release, namespace=namespace, is_install=True)


def split_objects(rendered: dict[str, str]) -> list[tuple[str | None, str]]:
    """(repository file or None, document text) for every object, in template order."""
    docs = []
    for template in sorted(rendered):
        if template.endswith("NOTES.txt"):
            continue
        for chunk in DOC_SEPARATOR.split(rendered[template]):
            body = "\n".join(
                line for line in chunk.strip().splitlines() if line.strip() and not line.startswith("#")
            )
            if not body:
                continue
            mark = SOURCE_MARK.match(chunk.strip())  # the first line, written by ct.emit
            docs.append((mark.group(1) if mark else None, chunk.strip() + "\n"))
    return docs


def output_path(source: str | None, text: str) -> Path:
    if source is not None:
        if not re.fullmatch(r"(tasks|pipeline)(/[a-z0-9][-a-z0-9]*)*/[a-z0-9][-a-z0-9]*\.yaml", source):
            raise CheckFailed(f"rendered object names an unexpected source {source!r}")
        return Path(source)
    obj = helm.values_from_yaml(text)
    kind = str(obj.get("kind", "")).lower()
    name = str(obj.get("metadata", {}).get("name", ""))
    if not re.fullmatch(r"[a-z]+", kind) or not re.fullmatch(r"[a-z0-9][-a-z0-9.]*", name):
        raise CheckFailed(f"rendered object without a usable kind/name: {text[:200]!r}")
    return Path("other") / f"{kind}-{name}.yaml"


def write_rendered(rendered: dict[str, str], out: Path) -> list[Path]:
    if out.exists() and any(out.iterdir()):
        raise CheckFailed(f"{out}: not empty; render into a new directory")
    written: list[Path] = []
    for source, text in split_objects(rendered):
        rel = output_path(source, text)
        if rel in written:
            raise CheckFailed(f"two rendered objects map to {rel}")
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text, encoding="utf-8")
        written.append(rel)
    notes = next((t for p, t in rendered.items() if p.endswith("NOTES.txt")), None)
    if notes is not None:
        (out / "NOTES.txt").write_text(notes.strip() + "\n", encoding="utf-8")
    return written


def cmd_lint(args) -> None:
    values = values_from(args.values, args.set)
    with helm_log_filtered():
        report = lint(CHART, values, namespace=args.namespace, strict=True)
    bad = [m for m in report["messages"] if m["severity"] >= 2] + [
        {"severity": 3, "path": "-", "error": e} for e in report["errors"]
    ]
    for m in report["messages"]:
        print(f"  [{('', 'INFO', 'WARNING', 'ERROR')[m['severity']]}] {m['path']}: {m['error']}")
    if bad:
        raise CheckFailed(f"helm lint {' '.join(args.values)}: {len(bad)} warning(s)/error(s)")
    print(f"helm lint {' '.join(args.values)}: 0 errors, 0 warnings")


def cmd_render(args) -> None:
    values = values_from(args.values, args.set)
    try:
        rendered = render(values, args.namespace, args.release, Path(args.chart))
    except helm.HelmError as e:
        raise CheckFailed(f"render {' '.join(args.values)}: {e}") from e
    written = write_rendered(rendered, Path(args.out))
    print(f"rendered {len(written)} objects into {args.out}")


def cmd_package(args) -> None:
    Path(args.out).mkdir(parents=True, exist_ok=True)
    with helm_log_filtered():
        archive = package(CHART, destination=args.out)
    print(f"packaged {archive}")


def cmd_drift(args) -> None:
    expect = load_yaml(Path(args.expect)) if args.expect else None
    problems = chart_drift.check(
        Path(args.dir), ROOT, canonical=args.canonical, complete=args.complete, expect=expect, load=load_yaml
    )
    if problems:
        raise CheckFailed("drift between the rendered chart and tasks/, pipeline/:\n  " + "\n  ".join(problems))
    print(f"drift {args.dir}: every rendered object matches its repository file"
          f"{' exactly' if args.canonical else ' except for the allowed substitutions'}")


def cmd_schema_cases(args) -> None:
    base = load_yaml(Path(args.base)) if args.base else {}
    failures = []
    for case in args.cases:
        text = read_text(Path(case))
        expected = re.findall(r"^# expect: (.+)$", text, re.M)
        if not expected:
            raise CheckFailed(f"{case}: no `# expect: TEXT` line")
        try:
            render(deep_merge(base, load_yaml(Path(case))), args.namespace, "ct-pipeline")
            failures.append(f"{case}: rendered, but must fail with {expected}")
            continue
        except helm.HelmError as e:
            message = str(e)
        missing = [x for x in expected if x not in message]
        if missing:
            failures.append(f"{case}: failed without {missing} in the message: {message.strip()}")
        else:
            print(f"  {Path(case).name}: rejected: {message.strip().splitlines()[-1].strip()}")
    if failures:
        raise CheckFailed("values that must be rejected:\n  " + "\n  ".join(failures))
    print(f"schema cases: {len(args.cases)} rejected with the expected message")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="chart.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def values_args(sp):
        sp.add_argument("-f", "--values", action="append", default=[], help="values file (repeatable)")
        sp.add_argument("--set", action="append", default=[], help="K=V as helm --set (repeatable)")
        sp.add_argument("-n", "--namespace", default="user1-toolings", help="release namespace")

    sp = sub.add_parser("lint", help="helm lint, 0 warnings and errors")
    values_args(sp)
    sp.set_defaults(fn=cmd_lint)
    sp = sub.add_parser("render", help="render one object per file")
    values_args(sp)
    sp.add_argument("--release", default="ct-pipeline")
    sp.add_argument("--chart", default=str(CHART), help="chart directory or packaged .tgz")
    sp.add_argument("--out", required=True)
    sp.set_defaults(fn=cmd_render)
    sp = sub.add_parser("package", help="helm package")
    sp.add_argument("--out", required=True)
    sp.set_defaults(fn=cmd_package)
    sp = sub.add_parser("drift", help="rendered objects vs tasks/, pipeline/")
    sp.add_argument("dir")
    sp.add_argument("--canonical", action="store_true", help="rendered with the files' own values: only structural changes allowed")
    sp.add_argument("--complete", action="store_true", help="every file of tasks/ and pipeline/ must be rendered")
    sp.add_argument("--expect", help="YAML: {repository file: {path: value}} the render must hold")
    sp.set_defaults(fn=cmd_drift)
    sp = sub.add_parser("schema-cases", help="values that must be rejected")
    sp.add_argument("--base", help="values every case is merged over")
    sp.add_argument("-n", "--namespace", default="user1-toolings")
    sp.add_argument("cases", nargs="+")
    sp.set_defaults(fn=cmd_schema_cases)

    args = p.parse_args(argv)
    try:
        args.fn(args)
    except CheckFailed as e:
        print(f"chart.py {args.cmd}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
