//! What the hostile-input suites of the steps (`crates/<step>/tests/hostile.rs`) share: the
//! outcome of a step binary ([`Out`]: exit code, output, the one-line message, no secret in
//! it), the files a step left in its results directory ([`left_files`]), a TCP listener that
//! tells whether anyone connected ([`Canary`]), and SIGTERM at a chosen moment
//! ([`terminate_when`]).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// What a step binary did.
#[derive(Debug, Clone)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Out {
    fn from(out: std::process::Output) -> Self {
        Out {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Out {
    /// The last line on stderr (a step's one-line error).
    pub fn last(&self) -> &str {
        self.stderr.lines().last().unwrap_or("")
    }

    /// The one-line message: clap's `error:` line for a usage error clap reports, else the
    /// step's last line.
    pub fn message(&self) -> &str {
        self.stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or(self.last())
    }

    /// Panics when `secret` appears in stdout or stderr.
    pub fn no_secret(&self, secret: &str) -> &Self {
        assert!(
            !self.stdout.contains(secret) && !self.stderr.contains(secret),
            "the secret leaked:\n{}{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// The names of the files in `dir` (results, temporary files), sorted; none when `dir` is
/// missing.
pub fn left_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A loopback TCP port that accepts connections and never answers; tells whether anyone
/// connected. Accepted connections stay open (a request in flight hangs) until it is dropped.
pub struct Canary {
    listener: TcpListener,
    accepted: Mutex<Vec<TcpStream>>,
}

impl Default for Canary {
    fn default() -> Self {
        Self::new()
    }
}

impl Canary {
    pub fn new() -> Canary {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        Canary {
            listener,
            accepted: Mutex::new(Vec::new()),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("the canary's address")
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// Whether anyone has connected so far.
    pub fn touched(&self) -> bool {
        let mut accepted = self.accepted.lock().unwrap_or_else(|p| p.into_inner());
        while let Ok((conn, _)) = self.listener.accept() {
            accepted.push(conn);
        }
        !accepted.is_empty()
    }
}

/// Send SIGTERM to `pid` (as the kubelet does when Tekton deletes a step's pod).
pub fn sigterm(pid: u32) {
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -TERM {pid} failed");
}

/// Spawn `cmd` with its output captured, wait (at most 10 s) until `ready` holds, send it
/// SIGTERM and collect what it did.
pub async fn terminate_when(
    mut cmd: tokio::process::Command,
    mut ready: impl FnMut() -> bool,
) -> Out {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the step");
    let mut waited = Duration::ZERO;
    while !ready() {
        assert!(
            waited < Duration::from_secs(10),
            "the step never reached the phase to signal"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        waited += Duration::from_millis(5);
    }
    sigterm(child.id().expect("the step is running"));
    child
        .wait_with_output()
        .await
        .expect("collect the step's output")
        .into()
}
