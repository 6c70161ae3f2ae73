#!/usr/bin/env python3
"""Baseline for bench/registry.sh: the original Python step with model-registry 0.2.10.

  registry_step.py seed BASE_URL VERSIONS       register jukebox versions 1..VERSIONS
  registry_step.py step BASE_URL VERSION ENV RUN_ID AUTHOR
                                                 the Tekton step's statements, as it ran them

The token is read from KF_PIPELINES_SA_TOKEN_PATH, as in the original step.
"""

import sys
import urllib.parse
import warnings


def registry(base_url, author):
    from model_registry import ModelRegistry

    url = urllib.parse.urlparse(base_url)
    return ModelRegistry(
        server_address=f"{url.scheme}://{url.hostname}", port=url.port, author=author, is_secure=False
    )


def main(argv):
    warnings.simplefilter("ignore")
    if argv[1] == "seed":
        reg = registry(argv[2], "seed-author")
        for n in range(1, int(argv[3]) + 1):
            reg.register_model(
                "jukebox",
                f"s3://bucket/jukebox/{n}",
                model_format_name="onnx",
                model_format_version="1",
                version=str(n),
                metadata={"registered_by": "seed"},
            )
        return 0
    _, _, base_url, version, env, run_id, author = argv
    app, project = "jukebox", "proj"
    reg = registry(base_url, author)
    v = reg.get_model_version(app, version)
    v.custom_properties["pipeline_run_id"] = run_id
    reg.update(v)
    for mv in reg.get_model_versions(app):
        if mv.name == version:
            mv.custom_properties[env] = ""
            mv.author = author
            reg.update(mv)
        elif env in (mv.custom_properties or {}):
            del mv.custom_properties[env]
            reg.update(mv)
    artifact = reg.get_model_artifact(app, version)
    artifact.uri = f"oci://image-registry.openshift-image-registry.svc:5000/{project}-{env}/{app}:{version}"
    reg.update(artifact)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
