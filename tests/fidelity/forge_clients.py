#!/usr/bin/env python3
"""Fidelity check: PyGithub 2.10.0 and python-gitlab 8.6.0 against the forge's GitHub and GitLab
views, and the forge's git smart HTTP with the git CLI.

Usage: forge_clients.py FORGE_URL ADMIN_TOKEN ADMIN_USER

Creates a repository through the Gitea API, pushes `main` and a feature branch with the git CLI
(credentials in the environment, never in argv or the URL), then drives the client calls a PR
step makes on each forge: find, create, the "already exists" answer, update, labels, compare,
close, and a rejected token.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import urllib.request

import github
import gitlab

URL, TOKEN, ADMIN = sys.argv[1], sys.argv[2], sys.argv[3]
REPO = "fidelity"
FULL = f"{ADMIN}/{REPO}"


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok - {what}")


def gitea(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + "/api/v1" + path, data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(req) as r:
        text = r.read()
    return json.loads(text) if text else None


def git(cwd, *args):
    basic = base64.b64encode(f"{ADMIN}:{TOKEN}".encode()).decode()
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
               GIT_TERMINAL_PROMPT="0", GIT_CONFIG_COUNT="1",
               GIT_CONFIG_KEY_0="http.extraHeader",
               GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}",
               GIT_AUTHOR_NAME="Fidelity", GIT_AUTHOR_EMAIL="f@example.com",
               GIT_COMMITTER_NAME="Fidelity", GIT_COMMITTER_EMAIL="f@example.com")
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


repo = gitea("POST", "/user/repos", {"name": REPO})
check(repo["clone_url"] == f"{URL}/{FULL}.git", "Gitea API created the repository")
gitea("POST", f"/repos/{FULL}/labels", {"name": "promote", "color": "#00aabb"})
with tempfile.TemporaryDirectory() as d:
    git(d, "init", "-q", "-b", "main")
    with open(os.path.join(d, "config.yaml"), "w") as f:
        f.write("version: 1.0.0\n")
    git(d, "add", ".")
    git(d, "commit", "-qm", "init")
    git(d, "push", "-q", repo["clone_url"], "main")
    git(d, "checkout", "-qb", "jukebox-1.0.1")
    with open(os.path.join(d, "config.yaml"), "w") as f:
        f.write("version: 1.0.1\n")
    git(d, "commit", "-qam", "promote")
    git(d, "push", "-q", repo["clone_url"], "jukebox-1.0.1")
check(len(gitea("GET", f"/repos/{FULL}/branches")) == 2, "git CLI pushed two branches over smart HTTP")

# --- PyGithub -------------------------------------------------------------------------------
gh = github.Github(base_url=f"{URL}/github", auth=github.Auth.Token(TOKEN))
r = gh.get_repo(FULL)
check(r.full_name == FULL and r.default_branch == "main", "PyGithub get_repo")
check(r.compare("main", "jukebox-1.0.1").ahead_by == 1, "PyGithub compare ahead_by")
open_prs = list(r.get_pulls(state="open", head=f"{ADMIN}:jukebox-1.0.1", base="main"))
check(open_prs == [], "PyGithub get_pulls(head=owner:branch) finds nothing yet")
pr = r.create_pull(base="main", head="jukebox-1.0.1", title="Promote", body="b")
check(pr.number == 1 and pr.state == "open", "PyGithub create_pull")
try:
    r.create_pull(base="main", head="jukebox-1.0.1", title="Promote", body="b")
    check(False, "duplicate create_pull must fail")
except github.GithubException as e:
    msgs = [x.get("message", "") for x in e.data.get("errors", [])]
    check(e.status == 422 and any("already exists" in m for m in msgs),
          "PyGithub duplicate create_pull: 422 'A pull request already exists'")
found = list(r.get_pulls(state="open", head=f"{ADMIN}:jukebox-1.0.1", base="main"))
check([p.number for p in found] == [1], "PyGithub get_pulls(head=owner:branch) finds it")
pr.edit(title="Promote 1.0.1", body="new body")
check(r.get_pull(1).title == "Promote 1.0.1", "PyGithub edit title")
pr.add_to_labels("promote")
check([lb.name for lb in r.get_pull(1).labels] == ["promote"], "PyGithub add_to_labels")
check(r.get_label("promote").name == "promote", "PyGithub get_label")
pr.edit(state="closed")
check(r.get_pull(1).state == "closed", "PyGithub close")
try:
    github.Github(base_url=f"{URL}/github", auth=github.Auth.Token("wrong")).get_repo(FULL).full_name
    check(False, "bad token must fail")
except github.BadCredentialsException as e:
    check(e.status == 401, "PyGithub bad token: BadCredentialsException 401")

# --- python-gitlab ----------------------------------------------------------------------------
gl = gitlab.Gitlab(url=f"{URL}/gitlab", private_token=TOKEN)
p = gl.projects.get(FULL)
check(p.path_with_namespace == FULL, "python-gitlab projects.get(path)")
check(gl.projects.get(p.id).id == p.id, "python-gitlab projects.get(id)")
mrs = p.mergerequests.list(state="opened", source_branch="jukebox-1.0.1", target_branch="main")
check(list(mrs) == [], "python-gitlab mergerequests.list(state=opened): the closed PR does not count")
cmp = p.repository_compare("main", "jukebox-1.0.1")
check(len(cmp["commits"]) == 1, "python-gitlab repository_compare")
users = gl.users.list(username=ADMIN)
check([u.username for u in users] == [ADMIN], "python-gitlab users.list(username=)")
mr = p.mergerequests.create({"source_branch": "jukebox-1.0.1", "target_branch": "main",
                             "title": "Promote", "description": "d",
                             "assignee_ids": [users[0].id], "labels": "promote"})
check(mr.iid == 2 and mr.state == "opened", "python-gitlab mergerequests.create (iid shares the sequence)")
check(mr.labels == ["promote"] and mr.assignees[0]["username"] == ADMIN, "python-gitlab labels and assignees")
try:
    p.mergerequests.create({"source_branch": "jukebox-1.0.1", "target_branch": "main", "title": "x"})
    check(False, "duplicate MR must fail")
except gitlab.exceptions.GitlabCreateError as e:
    check(e.response_code == 409 and "already exists" in str(e.error_message),
          "python-gitlab duplicate create: 409 'Another open merge request already exists'")
mr.title = "Promote 1.0.1"
mr.save()
check(p.mergerequests.get(2).title == "Promote 1.0.1", "python-gitlab mr.save()")
check([lb.name for lb in p.labels.list()] == ["promote"], "python-gitlab labels.list")
try:
    gitlab.Gitlab(url=f"{URL}/gitlab", private_token="wrong").projects.get(FULL)
    check(False, "bad token must fail")
except gitlab.exceptions.GitlabAuthenticationError as e:
    check(e.response_code == 401, "python-gitlab bad token: 401")

# The Gitea view sees the same pull requests.
pulls = gitea("GET", f"/repos/{FULL}/pulls?state=all")
check(sorted((x["number"], x["state"]) for x in pulls) == [(1, "closed"), (2, "open")],
      "Gitea API lists both PRs")
print("forge fidelity: all checks passed")
