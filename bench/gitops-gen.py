#!/usr/bin/env python3
"""Emit a git fast-import stream for a synthetic GitOps repository.

Usage: gitops-gen.py FILES COMMITS | git fast-import
FILES config.yaml files under model-deployments/<env>/<app>/ (4 environments), one seed commit
with all of them, then COMMITS-1 commits that each bump one app's version.
"""
import sys

files = int(sys.argv[1])
commits = int(sys.argv[2])
envs = ["dev", "test", "stage", "prod"]
apps = files // len(envs)
out = sys.stdout.buffer
when = 1767225600  # fixed timestamps: the repository is identical on every run


def config(env, app, version):
    return (
        f"# {app} in {env}: managed by the CT pipeline\n"
        f"---\n"
        f"app: app{app:05d}\n"
        f'version: "{version}"    # bumped by CT\n'
        f"\n"
        f"image_repository: quay.io/acme/app{app:05d}\n"
        f"image_namespace: ml-{env}   # namespace\n"
        f"model:\n"
        f"  name: 'app{app:05d}'\n"
        f"  replicas: 2\n"
        f"resources: {{cpu: 500m, memory: 1Gi}}\n"
    ).encode()


def commit(n, msg, entries):
    out.write(b"commit refs/heads/main\n")
    out.write(f"committer Seed <seed@example.com> {when + n} +0000\n".encode())
    m = msg.encode()
    out.write(b"data %d\n%s\n" % (len(m), m))
    for path, data in entries:
        out.write(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data))
    out.write(b"\n")


seed = [
    (f"model-deployments/{env}/app{a:05d}/config.yaml", config(env, a, "1.0.0"))
    for env in envs
    for a in range(apps)
]
seed.append(("README.md", b"Synthetic GitOps repository for benchmarks\n"))
commit(0, "seed", seed)
for n in range(1, commits):
    env = envs[n % len(envs)]
    a = (n * 7919) % apps
    commit(n, f"bump app{a:05d} in {env}", [
        (f"model-deployments/{env}/app{a:05d}/config.yaml", config(env, a, f"1.0.{n}")),
    ])
