#!/usr/bin/env python3
"""Fidelity check: the official model-registry 0.2.10 Python client against the emulator.

Registers `jukebox` versions 1..3 with artifacts through the client, runs the original Tekton
step's update sequence (below, statement for statement) for v1 then v2 in env `test`, and
reads everything back through the client. Then checks the wire format and error answers over
raw HTTP, and, with --step, runs the Rust write-registry-metadata against the same data and
reads its work back through the Python client.

Usage: registry_client.py BASE_URL [--token-file FILE] [--step PATH/TO/write-registry-metadata]
The last line is `N passed, M failed`; the exit code is 1 on any failure.
"""

import argparse
import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import warnings

PREFIX = "/api/model_registry/v1alpha3"
RESULTS = {"passed": 0, "failed": 0}


def check(name, cond, detail=""):
    if cond:
        RESULTS["passed"] += 1
        print(f"PASS {name}")
    else:
        RESULTS["failed"] += 1
        print(f"FAIL {name} {detail}")


def original_step(registry, app, version, env, run_id, author, project):
    """The Python step's statements (model-registry 0.2.10), unchanged in behaviour."""
    v = registry.get_model_version(app, version)
    v.custom_properties["pipeline_run_id"] = run_id
    registry.update(v)
    for mv in registry.get_model_versions(app):
        if mv.name == version:
            mv.custom_properties[env] = ""
            mv.author = author
            registry.update(mv)
        elif env in (mv.custom_properties or {}):
            del mv.custom_properties[env]
            registry.update(mv)
    artifact = registry.get_model_artifact(app, version)
    artifact.uri = f"oci://image-registry.openshift-image-registry.svc:5000/{project}-{env}/{app}:{version}"
    registry.update(artifact)


class Http:
    def __init__(self, base, token):
        self.base = base.rstrip("/")
        self.token = token

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base_url")
    ap.add_argument("--token-file")
    ap.add_argument("--step", help="path of the write-registry-metadata binary")
    args = ap.parse_args()

    token = None
    if args.token_file:
        token = open(args.token_file).read().strip()
        # The client reads the file verbatim: give it one without a newline.
        os.environ["KF_PIPELINES_SA_TOKEN_PATH"] = args.token_file
    url = urllib.parse.urlparse(args.base_url)
    warnings.simplefilter("ignore")
    from model_registry import ModelRegistry
    from model_registry.exceptions import StoreError

    registry = ModelRegistry(
        server_address=f"{url.scheme}://{url.hostname}",
        port=url.port,
        author="seed-author",
        is_secure=False,
    )
    http = Http(args.base_url, token)

    # --- seed through the client ---
    for n in ("1", "2", "3"):
        registry.register_model(
            "jukebox",
            f"s3://bucket/jukebox/{n}",
            model_format_name="onnx",
            model_format_version="1",
            version=n,
            metadata={"registered_by": "seed", "epochs": 10, "accuracy": 0.93, "approved": True},
        )
    try:
        registry.register_model(
            "jukebox", "s3://x", model_format_name="onnx", model_format_version="1", version="1"
        )
        check("duplicate version refused by the client", False, "no error")
    except StoreError as e:
        check("duplicate version refused by the client", "already exists" in str(e), str(e))

    # --- the original step, twice ---
    original_step(registry, "jukebox", "1", "test", "run-aaa", "Alice <alice@example.com>", "proj")
    original_step(registry, "jukebox", "2", "test", "run-bbb", "Bob <bob@example.com>", "proj")

    v1 = registry.get_model_version("jukebox", "1")
    v2 = registry.get_model_version("jukebox", "2")
    check("v2 has pipeline_run_id", v2.custom_properties.get("pipeline_run_id") == "run-bbb", v2.custom_properties)
    check("v2 holds the label", v2.custom_properties.get("test") == "", v2.custom_properties)
    check("v2 author updated", v2.author == "Bob <bob@example.com>", v2.author)
    check("v1 lost the label", "test" not in v1.custom_properties, v1.custom_properties)
    check("v1 keeps its run id", v1.custom_properties.get("pipeline_run_id") == "run-aaa", v1.custom_properties)
    check("v1 keeps its author", v1.author == "Alice <alice@example.com>", v1.author)
    check(
        "typed metadata round-trips",
        v1.custom_properties.get("epochs") == 10
        and v1.custom_properties.get("accuracy") == 0.93
        and v1.custom_properties.get("approved") is True
        and v1.custom_properties.get("registered_by") == "seed",
        v1.custom_properties,
    )
    a1 = registry.get_model_artifact("jukebox", "1")
    a2 = registry.get_model_artifact("jukebox", "2")
    a3 = registry.get_model_artifact("jukebox", "3")
    oci = "oci://image-registry.openshift-image-registry.svc:5000/proj-test/jukebox:"
    check("artifact 1 uri", a1.uri == oci + "1", a1.uri)
    check("artifact 2 uri", a2.uri == oci + "2", a2.uri)
    check("artifact 3 untouched", a3.uri == "s3://bucket/jukebox/3", a3.uri)
    check("artifact keeps its format", a2.model_format_name == "onnx", a2.model_format_name)
    names = [v.name for v in registry.get_model_versions("jukebox")]
    check("three versions listed once", names == ["1", "2", "3"], names)
    paged = [v.name for v in registry.get_model_versions("jukebox").page_size(1)]
    check("pager with pageSize=1 sees every version once", paged == ["1", "2", "3"], paged)
    desc = [v.name for v in registry.get_model_versions("jukebox").descending()]
    check("descending order", desc == ["3", "2", "1"], desc)
    try:
        registry.get_model_version("nope", "1")
        check("unknown model raises StoreError", False)
    except StoreError as e:
        check("unknown model raises StoreError", "does not exist" in str(e), str(e))
    check("unknown version is None", registry.get_model_version("jukebox", "999") is None)

    # --- the wire, over raw HTTP ---
    st, body = http.call("GET", f"{PREFIX}/model_version?name=2&parentResourceId=1")
    check("find version 200", st == 200, st)
    cp = body.get("customProperties", {})
    check(
        "int_value is a string",
        cp.get("epochs") == {"int_value": "10", "metadataType": "MetadataIntValue"},
        cp.get("epochs"),
    )
    check("label wire form", cp.get("test") == {"string_value": "", "metadataType": "MetadataStringValue"}, cp.get("test"))
    check("ids and timestamps are strings", all(isinstance(body[k], str) for k in ("id", "createTimeSinceEpoch", "lastUpdateTimeSinceEpoch")), body)
    st, lst = http.call("GET", f"{PREFIX}/registered_models/1/versions?pageSize=2&sortOrder=ASC")
    check("list page shape", st == 200 and lst["size"] == 2 and lst["pageSize"] == 2 and lst["nextPageToken"] != "", lst)
    st, last = http.call("GET", f"{PREFIX}/registered_models/1/versions?pageSize=2&nextPageToken={urllib.parse.quote(lst['nextPageToken'])}")
    check("last page has an empty token", st == 200 and last["nextPageToken"] == "" and last["size"] == 1, last)
    st, err = http.call("GET", f"{PREFIX}/model_version?name=9&parentResourceId=1")
    check("not found is 404 with an Error body", st == 404 and err.get("code") == "Not Found" and "not found" in err.get("message", ""), (st, err))
    st, err = http.call("POST", f"{PREFIX}/registered_models", {"name": "jukebox"})
    check("duplicate model is 409", st == 409 and "already exists" in err.get("message", ""), (st, err))
    before = http.call("GET", f"{PREFIX}/model_versions/3")[1]
    st, err = http.call("PATCH", f"{PREFIX}/model_versions/3", {"customProperties": {}, "bogus": 1})
    check("unknown field is 400", st == 400 and 'unknown field "bogus"' in err.get("message", ""), (st, err))
    st, err = http.call("PATCH", f"{PREFIX}/model_versions/3", {"customProperties": {"n": {"metadataType": "MetadataIntValue", "int_value": "4294967296"}}})
    check("int32 overflow is 400", st == 400, (st, err))
    check("rejected PATCHes change nothing", http.call("GET", f"{PREFIX}/model_versions/3")[1] == before)
    st, err = http.call("GET", f"{PREFIX}/model_versions/abc")
    check("non-numeric id is 400", st == 400, (st, err))
    st, _ = http.call("GET", f"/api/model_registry/v1/model_versions/3")
    check("the v1 prefix serves the same data", st == 200)
    if token:
        saved, http.token = http.token, "wrong"
        st, _ = http.call("GET", f"{PREFIX}/registered_models")
        http.token = saved
        check("a wrong token is 401", st == 401, st)

    # Struct/proto values the client cannot write: set them over HTTP on version 3.
    struct_b64 = base64.b64encode(json.dumps({"lr": 0.01}).encode()).decode()
    rich = {
        "s": {"struct_value": struct_b64, "metadataType": "MetadataStructValue"},
        "p": {"type": "type.googleapis.com/google.protobuf.StringValue", "proto_value": "CgR0ZXN0", "metadataType": "MetadataProtoValue"},
        "prod": {"string_value": "", "metadataType": "MetadataStringValue"},
    }
    cp3 = dict(http.call("GET", f"{PREFIX}/model_versions/4")[1]["customProperties"])
    cp3.update(rich)
    st, _ = http.call("PATCH", f"{PREFIX}/model_versions/4", {"customProperties": cp3})
    check("struct/proto values accepted", st == 200, st)

    # --- the Rust step on the same data, read back through the Python client ---
    if args.step:
        env = dict(os.environ)
        env.pop("CT_TOKEN", None)
        cmd = [
            args.step, "--registry-url", args.base_url, "--model", "jukebox", "--version", "2",
            "--environment", "prod", "--kfp-run-id", "run-rust", "--author", "Carol <carol@example.com>",
            "--artifact-uri", "oci://quay.io/acme/jukebox:2", "--results-dir", os.environ.get("TMPDIR", "/tmp"),
            "--property", "stage:int=2",
        ]
        if args.token_file:
            cmd += ["--token-file", args.token_file]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        check("Rust step exits 0", p.returncode == 0, p.stderr)
        check("Rust step prints MODEL_VERSION_ID", "MODEL_VERSION_ID=3" in p.stdout, p.stdout)
        v2 = registry.get_model_version("jukebox", "2")
        v3 = registry.get_model_version("jukebox", "3")
        check("Rust: run id and prod label on v2", v2.custom_properties.get("pipeline_run_id") == "run-rust" and v2.custom_properties.get("prod") == "", v2.custom_properties)
        check("Rust: typed --property", v2.custom_properties.get("stage") == 2, v2.custom_properties)
        check("Rust: test label kept on v2", v2.custom_properties.get("test") == "", v2.custom_properties)
        check("Rust: author", v2.author == "Carol <carol@example.com>", v2.author)
        check("Rust: prod label removed from v3", "prod" not in v3.custom_properties, v3.custom_properties)
        raw3 = http.call("GET", f"{PREFIX}/model_versions/4")[1]["customProperties"]
        check("Rust: struct/proto on v3 untouched", raw3.get("s") == rich["s"] and raw3.get("p") == rich["p"], raw3)
        a2 = registry.get_model_artifact("jukebox", "2")
        check("Rust: artifact uri", a2.uri == "oci://quay.io/acme/jukebox:2", a2.uri)
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        check("Rust: re-run exits 0 with nothing to write", p.returncode == 0 and "nothing to write" in p.stderr, p.stderr)

    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
