//! HTTPS with a private CA: trusted through --ca-file (added to the system roots), refused
//! without it, accepted with --insecure-skip-tls-verify.

mod common;

use common::tls::{TestPki, start_tls_front};
use common::*;

#[test]
fn https_with_a_private_ca() {
    let server = GitServer::start();
    let bare = server.create_repo(
        "org/gitops",
        &[("env/app/config.yaml", b"version: 1.0.0\n")],
    );
    let pki = TestPki::generate();
    let backend = server.url.trim_start_matches("http://").to_string();
    let https = start_tls_front(&server.rt, &pki, backend);
    let url = format!("{https}/org/gitops.git");

    // Unknown CA: a clear TLS error, exit 3, nothing pushed.
    let run = Step::new(&url)
        .args(&["--file", "env/app/config.yaml", "--set", "version=1.0.1"])
        .run();
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(run.stderr().contains("certificate"), "{}", run.stderr());
    assert_eq!(server.pushes(), 0);

    // The CA through --ca-file.
    let run = Step::new(&url)
        .args(&[
            "--file",
            "env/app/config.yaml",
            "--set",
            "version=1.0.1",
            "--ca-file",
        ])
        .args(&[pki.ca().to_str().unwrap()])
        .run()
        .ok();
    assert_eq!(run.result("CHANGED"), "true");
    assert_eq!(show(&bare, "main:env/app/config.yaml"), "version: 1.0.1\n");

    // Debug escape hatch.
    Step::new(&url)
        .args(&[
            "--file",
            "env/app/config.yaml",
            "--set",
            "version=1.0.2",
            "--insecure-skip-tls-verify",
        ])
        .run()
        .ok();
    assert_eq!(show(&bare, "main:env/app/config.yaml"), "version: 1.0.2\n");

    // A missing CA file is a usage error.
    let run = Step::new(&url)
        .args(&[
            "--file",
            "env/app/config.yaml",
            "--set",
            "version=1.0.3",
            "--ca-file",
            "/nonexistent/ca.pem",
        ])
        .run();
    assert_eq!(run.code(), 2, "{}", run.stderr());
}
