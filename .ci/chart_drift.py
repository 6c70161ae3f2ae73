"""The drift check between the rendered chart and the repository's tasks/ and pipeline/.

The chart has no copy of any spec: its templates read the repository's files (files/tasks and
files/pipeline are symlinks) and change a few fields. This module proves it on the rendered output:
every object marked `# ct-steps-source: FILE` must equal FILE, field by field, except at the paths
listed below. STRUCTURAL changes happen in every render (namespace, the chart's labels, the pinned
image on the PipelineRun, the optional alert Trigger on the EventListener); SUBSTITUTED ones are
driven by values, so a render with the files' own values (`--canonical`) must not show any.

Paths: `a.b` for keys ("quoted" when a key holds '.', '/', '[' or '"'), `list[name=x]` for the
items of the lists in KEYED, `list[3]` for other lists of maps; lists of scalars are compared
whole. A pattern allows its path and everything under it; `*` stands for one name.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any, Callable

CHART_LABELS = [
    'metadata.labels."app.kubernetes.io/managed-by"',
    'metadata.labels."app.kubernetes.io/instance"',
    'metadata.labels."helm.sh/chart"',
]

STRUCTURAL: dict[str, list[str]] = {
    "*": ["metadata.namespace", *CHART_LABELS],
    "pipeline/triggers/triggertemplate.yaml": [
        "spec.resourcetemplates[0].spec.params[name=image]",
        "spec.resourcetemplates[0].spec.params[name=kfp-sdk-image]",
    ],
    "pipeline/triggers/eventlistener.yaml": ["spec.triggers[triggerRef=ct-alert-retrain]"],
}

SUBSTITUTED: dict[str, list[str]] = {
    "tasks/*.yaml": ["spec.params[name=image].default", "spec.params[name=sdk-image].default"],
    "pipeline/ct-pipeline.yaml": ["spec.params[name=*].default"],
    "pipeline/triggers/trigger.yaml": [
        "spec.interceptors[name=verify-signature].params[name=secretRef].value",
        "spec.interceptors[name=git-server].params[name=filter].value",
    ],
    "pipeline/triggers/triggertemplate.yaml": [
        "spec.resourcetemplates[0].spec.workspaces[name=git-credentials].secret.secretName",
        "spec.resourcetemplates[0].spec.workspaces[name=forge-token].secret.secretName",
        "spec.resourcetemplates[0].spec.workspaces[name=source].volumeClaimTemplate.spec.resources.requests.storage",
        "spec.resourcetemplates[0].spec.workspaces[name=source].volumeClaimTemplate.spec.storageClassName",
    ],
    "pipeline/triggers/eventlistener.yaml": ["spec.resources.kubernetesResource.replicas"],
    "pipeline/triggers/alert-trigger.yaml": [
        "spec.interceptors[name=authenticate].params[name=filter].value",
        "spec.interceptors[name=model-label].params[name=filter].value",
        "spec.interceptors[name=model-label].params[name=overlays].value[key=app].expression",
    ],
    "pipeline/triggers/alert-triggerbinding.yaml": [
        "spec.params[name=git-url].value",
        "spec.params[name=git-revision].value",
    ],
    "pipeline/rbac/clusterrolebinding-triggers.yaml": ["metadata.name", "subjects[*].namespace"],
    "pipeline/rbac/role-model-registry.yaml": ["rules[*].resourceNames"],
    "pipeline/rbac/rolebinding-*.yaml": ["subjects[*].namespace"],
    "pipeline/rbac/rolebinding-modelcar-pullers.yaml": ["subjects[*].name"],
}

KEYED = {
    "params": "name",
    "interceptors": "name",
    "workspaces": "name",
    "env": "name",
    "steps": "name",
    "tasks": "name",
    "finally": "name",
    "results": "name",
    "triggers": "triggerRef",
    "overlays": "key",
    "value": "key",  # the overlays param of a cel interceptor: [{key, expression}]
}

MISSING = object()


def _key(k: str) -> str:
    return f'"{k}"' if re.search(r'[./\[\]"]', k) else k


def flatten(value: Any, path: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Leaf path -> value."""
    out = {} if out is None else out
    last = re.sub(r"\[.*\]$", "", path.rsplit(".", 1)[-1])
    if isinstance(value, dict) and value:
        for k, v in value.items():
            flatten(v, f"{path}.{_key(k)}" if path else _key(k), out)
    elif isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
        field = KEYED.get(last)
        keys = [x.get(field) for x in value] if field else []
        if field and all(isinstance(k, str) for k in keys) and len(set(keys)) == len(keys):
            for item, k in zip(value, keys):
                flatten(item, f"{path}[{field}={k}]", out)
        else:
            for i, item in enumerate(value):
                flatten(item, f"{path}[{i}]", out)
    else:
        out[path] = value
    return out


def _pattern(p: str) -> re.Pattern:
    body = re.escape(p).replace(r"\*", r"[^.\[\]]*")
    return re.compile(body + r"(?=$|[.\[])")


def allowed_patterns(source: str, canonical: bool) -> list[re.Pattern]:
    tables = [STRUCTURAL] if canonical else [STRUCTURAL, SUBSTITUTED]
    return [
        _pattern(p)
        for table in tables
        for glob, paths in table.items()
        if fnmatch.fnmatchcase(source, glob)
        for p in paths
    ]


def diff(canonical: dict, rendered: dict) -> list[tuple[str, Any, Any]]:
    a, b = flatten(canonical), flatten(rendered)
    return [
        (p, a.get(p, MISSING), b.get(p, MISSING))
        for p in sorted(set(a) | set(b))
        if a.get(p, MISSING) != b.get(p, MISSING)
    ]


def repository_files(root: Path) -> list[str]:
    files = sorted(p for p in (root / "tasks").glob("*.yaml"))
    files += sorted((root / "pipeline").rglob("*.yaml"))
    return [str(p.relative_to(root)) for p in files]


def _show(v: Any) -> str:
    return "(absent)" if v is MISSING else repr(v)


def check(
    rendered_dir: Path,
    root: Path,
    *,
    canonical: bool,
    complete: bool,
    expect: dict | None,
    load: Callable[[Path], dict],
) -> list[str]:
    problems: list[str] = []
    rendered: dict[str, dict] = {}
    every: dict[str, dict] = {}
    for f in sorted(rendered_dir.rglob("*.yaml")):
        rel = str(f.relative_to(rendered_dir))
        if rel.startswith("other/"):
            every[rel] = load(f)
            continue
        with open(f, encoding="utf-8") as fh:
            first = fh.readline().strip()
        source = first.removeprefix("# ct-steps-source: ")
        if source == first or source != rel:
            problems.append(f"{rel}: its first line must be `# ct-steps-source: {rel}`, found {first!r}")
            continue
        rendered[rel] = every[rel] = load(f)
    sources = repository_files(root)
    for src in sources:
        if src not in rendered and complete:
            problems.append(f"{src}: not rendered by the chart (render every file of tasks/ and pipeline/)")
    for src, obj in sorted(rendered.items()):
        if src not in sources:
            problems.append(f"{src}: rendered, but the repository has no such file")
            continue
        allowed = allowed_patterns(src, canonical)
        mode = " with the files' own values" if canonical else ""
        for path, was, now in diff(load(root / src), obj):
            if not any(p.match(path) for p in allowed):
                problems.append(
                    f"{src}: {path}: {_show(was)} in the repository, {_show(now)} rendered "
                    f"(not a change the chart may make{mode})"
                )
    for src, pairs in (expect or {}).items():
        if src not in every:
            problems.append(f"{src}: expected in the render, not rendered")
            continue
        leaves = flatten(every[src])
        for path, want in pairs.items():
            got = {p: v for p, v in leaves.items() if p == path or p.startswith((path + ".", path + "["))}
            if got != flatten(want, path):
                problems.append(f"{src}: {path}: expected {want!r}, rendered {got or '(absent)'}")
    return problems
