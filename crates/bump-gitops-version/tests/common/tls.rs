//! HTTPS in front of the test git server: a throwaway CA and server certificate made with the
//! `openssl` CLI, and an in-process TLS terminator (tokio-native-tls) that forwards to the
//! plain-HTTP git server.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A test CA and a server certificate for 127.0.0.1 signed by it.
pub struct TestPki {
    pub dir: tempfile::TempDir,
}

impl TestPki {
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn generate() -> TestPki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            d,
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=ct-steps test CA",
                ],
            ]
            .concat(),
        );
        openssl(
            d,
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "srv.key",
                    "-out",
                    "srv.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "srv.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "srv.pem",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        );
        TestPki { dir }
    }

    fn acceptor(&self) -> tokio_native_tls::TlsAcceptor {
        let cert = std::fs::read(self.dir.path().join("srv.pem")).unwrap();
        let key = std::fs::read(self.dir.path().join("srv.key")).unwrap();
        let id = native_tls::Identity::from_pkcs8(&cert, &key).unwrap();
        native_tls::TlsAcceptor::new(id).unwrap().into()
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is needed for the HTTPS test (Debian: openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Start a TLS terminator on loopback forwarding to `backend` (host:port) on `rt`.
/// Returns the `https://127.0.0.1:PORT` base URL.
pub fn start_tls_front(rt: &tokio::runtime::Runtime, pki: &TestPki, backend: String) -> String {
    let acceptor = pki.acceptor();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let backend = backend.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return; // e.g. the client refused our certificate
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(&backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    format!("https://{addr}")
}
