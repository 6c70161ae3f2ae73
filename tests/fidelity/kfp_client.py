#!/usr/bin/env python3
"""Fidelity check: the official kfp 2.9.0 client against the ct-sandbox KFP emulator.

Usage: kfp_client.py KFP_URL FIXTURES_DIR TOKEN

Drives the SDK calls the Python Tekton step makes (create_run_from_pipeline_package with
experiment get-or-create and enable_caching, wait_for_run_completion) plus terminate, archive,
experiments, pipeline upload/versions and run_pipeline by version, and asserts on what the SDK
returns and on what the emulator received (its /_emulator/requests log).
"""
import json
import os
import sys
import time
import urllib.request

import kfp

URL, FIXTURES, TOKEN = sys.argv[1], sys.argv[2], sys.argv[3]
PKG = os.path.join(FIXTURES, "jukebox-training-pipeline.yaml")


def admin(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        text = r.read()
    return json.loads(text) if text else None


def script(outcome, pending_ms=20, running_ms=300, error=None):
    admin("POST", "/_emulator/scripts",
          {"outcome": outcome, "pending_ms": pending_ms, "running_ms": running_ms, "error": error})


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok - {what}")


with open(os.path.join(FIXTURES, "default_parameters.json")) as f:
    params = json.load(f)
params.update(version="abc1234", prod_flag=True)

client = kfp.Client(host=URL, existing_token=TOKEN)

# 1. The step's sequence: new experiment, inline package with caching on, wait.
script("SUCCEEDED")
res = client.create_run_from_pipeline_package(
    PKG, arguments=params, experiment_name="fidelity", enable_caching=True)
run = client.wait_for_run_completion(res.run_id, timeout=60, sleep_duration=0.05)
check(run.state == "SUCCEEDED", "create_run_from_pipeline_package + wait_for_run_completion: SUCCEEDED")
check(run.run_details.task_details and all(t.state == "SUCCEEDED" for t in run.run_details.task_details),
      "task_details deserialize and are all SUCCEEDED")
check(run.created_at is not None and run.finished_at >= run.created_at, "timestamps parse")

log = admin("GET", "/_emulator/requests")
posts = [r for r in log if r["method"] == "POST" and r["path"] == "/apis/v2beta1/runs"]
sent = dict(posts[0]["body"])
with open(os.path.join(FIXTURES, "create-run-request.jukebox.json")) as f:
    golden = json.load(f)
for k in ("experiment_id", "display_name"):
    sent.pop(k)
    golden.pop(k)
check(sent == golden, "the SDK's POST /runs body equals the golden fixture")
check(all(r["authorization"] == f"Bearer {TOKEN}" for r in log), "every request carried the bearer token")

# 2. Same experiment again (get path), FAILED run returned normally with its error.
script("FAILED", error="train-model: OOMKilled")
res2 = client.create_run_from_pipeline_package(PKG, arguments=params, experiment_name="fidelity")
run2 = client.wait_for_run_completion(res2.run_id, timeout=60, sleep_duration=0.05)
check(run2.state == "FAILED" and run2.error.message == "train-model: OOMKilled", "FAILED run with its error")
exp = client.get_experiment(experiment_name="fidelity")
check(exp.experiment_id == run.experiment_id == run2.experiment_id, "experiment reused by name")
exps = [e for e in (client.list_experiments().experiments or []) if e.display_name == "fidelity"]
check(len(exps) == 1, "exactly one experiment")
runs = client.list_runs(experiment_id=exp.experiment_id, page_size=10).runs
check(len(runs) == 2, "list_runs by experiment")

# 3. Terminate and archive.
script("RUNNING")
res3 = client.create_run_from_pipeline_package(PKG, arguments=params, experiment_name="fidelity")
client.terminate_run(res3.run_id)
deadline = time.time() + 30
while client.get_run(res3.run_id).state != "CANCELED" and time.time() < deadline:
    time.sleep(0.05)
check(client.get_run(res3.run_id).state == "CANCELED", "terminate_run → CANCELED")
client.archive_run(res3.run_id)
check(client.get_run(res3.run_id).storage_state == "ARCHIVED", "archive_run")

# 4. Upload, versions, run by version.
p = client.upload_pipeline(PKG, pipeline_name="jukebox")
check(client.get_pipeline_id("jukebox") == p.pipeline_id, "upload_pipeline + get_pipeline_id")
v2 = client.upload_pipeline_version(PKG, pipeline_version_name="v2", pipeline_id=p.pipeline_id)
versions = client.list_pipeline_versions(p.pipeline_id).pipeline_versions
check(sorted(v.display_name for v in versions) == ["jukebox", "v2"], "list_pipeline_versions")
script("SUCCEEDED", running_ms=50)
r4 = client.run_pipeline(experiment_id=exp.experiment_id, job_name="by-version", params=params,
                         pipeline_id=p.pipeline_id, version_id=v2.pipeline_version_id)
done = client.wait_for_run_completion(r4.run_id, timeout=60, sleep_duration=0.05)
check(done.state == "SUCCEEDED" and done.pipeline_version_reference.pipeline_version_id == v2.pipeline_version_id,
      "run_pipeline with a pipeline version")

# 5. Errors reach the SDK as ApiException with the server's status.
try:
    client.get_run("no-such-run")
    check(False, "unknown run raises")
except kfp.client.client.kfp_server_api.ApiException as e:  # noqa
    check(e.status == 404 and '"code":5' in e.body.replace(" ", ""), "404 googleRpcStatus for an unknown run")

print("kfp 2.9.0 fidelity: all checks passed")
