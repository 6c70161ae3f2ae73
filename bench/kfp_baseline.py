#!/usr/bin/env python3
"""Baseline for bench/kfp.sh: the KFP calls of the Python Tekton step, with kfp 2.9.0.

Usage: kfp_baseline.py KFP_URL TOKEN_FILE PIPELINE_YAML PARAMETERS_JSON

Same work as `execute-ds-pipeline` + `wait-kfp-run`: client (healthz), experiment
get-or-create, create the run from the compiled package with caching on, wait for it.
"""
import json
import sys
import warnings

warnings.simplefilter("ignore")
import kfp  # noqa: E402  (import time is part of what the step pays)

url, token_file, pkg, params_file = sys.argv[1:5]
with open(token_file) as f:
    token = f.read().strip()
with open(params_file) as f:
    params = json.load(f)
params.update(version="abc1234", prod_flag=True)

client = kfp.Client(host=url, existing_token=token)
res = client.create_run_from_pipeline_package(
    pkg, arguments=params, experiment_name="bench", enable_caching=True)
run = client.wait_for_run_completion(res.run_id, timeout=7200, sleep_duration=5)
if run.state != "SUCCEEDED":
    sys.exit(f"run {res.run_id} ended {run.state}")
