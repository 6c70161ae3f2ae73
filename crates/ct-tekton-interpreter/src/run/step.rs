//! One step as a process: its argv and environment from the Task, the stepTemplate and the
//! scope, the binary it runs, and its output copied line by line to a log and the observer;
//! SIGTERM at the deadline or on cancel, SIGKILL after the grace period.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use super::Observer;
use super::task::Ctx;
use crate::model::{EnvVar, Step};
use crate::subst::{Scope, Unresolved};

impl Ctx<'_> {
    pub(super) fn run_step(
        &self,
        step: &Step,
        ctx: &StepContext<'_>,
        log_path: &Path,
    ) -> Result<i32, String> {
        let StepContext {
            task,
            template,
            scope,
            paths,
            deadline,
        } = *ctx;
        let sub = |s: &str| scope.substitute(s).map(|v| paths.map(&v));
        let command = if step.command.is_empty() {
            template.command.clone().unwrap_or_default()
        } else {
            step.command.clone()
        };
        let args = if step.args.is_empty() && step.command.is_empty() {
            template.args.clone().unwrap_or_default()
        } else {
            step.args.clone()
        };
        let mut argv: Vec<String> = scope
            .substitute_list(&command)
            .map_err(|u| format!("step {}: {u}", step.name))?;
        argv.extend(
            scope
                .substitute_list(&args)
                .map_err(|u| format!("step {}: {u}", step.name))?,
        );
        let argv: Vec<String> = argv.iter().map(|a| paths.map(a)).collect();
        let Some(program) = argv.first() else {
            return Err(format!(
                "step {}: no command (the image's entrypoint is not known locally)",
                step.name
            ));
        };
        let exe = self.locate(program).map_err(|m| {
            format!(
                "step {} ({}): {m}",
                step.name,
                step.image
                    .as_deref()
                    .or(template.image.as_deref())
                    .unwrap_or("no image")
            )
        })?;

        // Environment: a clean one, like a container's, plus the template's and the step's.
        let mut env: Vec<(String, String)> = Vec::new();
        for k in ["PATH", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR", "LANG"] {
            if let Ok(v) = std::env::var(k) {
                env.push((k.into(), v));
            }
        }
        env.push(("HOME".into(), paths.home.to_string_lossy().into_owned()));
        env.extend(self.opts.env.iter().cloned());
        for e in template.env.iter().chain(step.env.iter()) {
            let v = env_value(e, step, &sub)?;
            env.retain(|(k, _)| k != &e.name);
            env.push((e.name.clone(), v));
        }
        let workdir = match step.working_dir.as_ref().or(template.working_dir.as_ref()) {
            Some(w) => PathBuf::from(sub(w).map_err(|u| format!("step {}: {u}", step.name))?),
            None => paths.home.clone(),
        };

        let mut cmd = Command::new(&exe);
        cmd.args(&argv[1..])
            .env_clear()
            .envs(env)
            .current_dir(&workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let kill = Kill {
            deadline,
            grace: self.opts.kill_grace,
            cancel: self.cancel.clone(),
        };
        run_logged(cmd, log_path, &*self.opts.observer, task, &step.name, kill)
            .map_err(|e| format!("step {}: cannot run {}: {e}", step.name, exe.display()))
    }

    /// `/usr/local/bin/NAME` → our binary in bin_dir; otherwise a host command when allowed.
    fn locate(&self, program: &str) -> Result<PathBuf, String> {
        if let Some(name) = program.strip_prefix("/usr/local/bin/") {
            let p = self.opts.bin_dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
            return Err(format!(
                "{name} not found in {} (build it: cargo build -p {name}, or pass --bin-dir)",
                self.opts.bin_dir.display()
            ));
        }
        if self.opts.host_commands
            && let Some(p) = which(program)
        {
            return Ok(p);
        }
        Err(format!(
            "`{program}` comes from the step's image and is not available locally{}",
            if self.opts.host_commands {
                " (not on PATH either)"
            } else {
                " (allow host commands to use one from PATH)"
            }
        ))
    }
}

fn env_value(
    e: &EnvVar,
    step: &Step,
    sub: &dyn Fn(&str) -> Result<String, Unresolved>,
) -> Result<String, String> {
    if e.value_from.is_some() {
        return Err(format!(
            "step {}: env {} uses valueFrom, which the local runner cannot resolve; bind the Secret as a workspace instead",
            step.name, e.name
        ));
    }
    sub(e.value.as_deref().unwrap_or(""))
        .map_err(|u| format!("step {}: env {}: {u}", step.name, e.name))
}

/// When to stop a running step.
struct Kill {
    deadline: Option<std::time::Instant>,
    grace: std::time::Duration,
    cancel: Arc<std::sync::atomic::AtomicBool>,
}

/// What every step of one TaskRun shares.
#[derive(Clone, Copy)]
pub(super) struct StepContext<'a> {
    pub task: &'a str,
    pub template: &'a crate::model::StepTemplate,
    pub scope: &'a Scope,
    pub paths: &'a PathMap,
    /// The PipelineTask's timeout, as an instant.
    pub deadline: Option<std::time::Instant>,
}

/// The container paths Tekton mounts, mapped to this TaskRun's directories.
pub(super) struct PathMap {
    pub results: PathBuf,
    pub home: PathBuf,
}

impl PathMap {
    /// Rewrite `/tekton/results…` and `/tekton/home…` at the start of a value or after `=`.
    pub fn map(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (prefix, to) in [
            ("/tekton/results", &self.results),
            ("/tekton/home", &self.home),
        ] {
            let to = to.to_string_lossy();
            let mut i = 0;
            while let Some(pos) = out[i..].find(prefix) {
                let at = i + pos;
                let end = at + prefix.len();
                let before_ok = at == 0 || out.as_bytes()[at - 1] == b'=';
                let after_ok = end == out.len() || out.as_bytes()[end] == b'/';
                if before_ok && after_ok {
                    out.replace_range(at..end, &to);
                    i = at + to.len();
                } else {
                    i = end;
                }
            }
        }
        out
    }
}

fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// Run a process, copying its stdout and stderr line by line to a log file and the observer.
fn run_logged(
    mut cmd: Command,
    log_path: &Path,
    observer: &dyn Observer,
    task: &str,
    step: &str,
    kill: Kill,
) -> std::io::Result<i32> {
    let file = Arc::new(Mutex::new(std::fs::File::create(log_path)?));
    let mut child = cmd.spawn()?;
    // At the deadline or on cancel: SIGTERM, then SIGKILL after the grace, unless the step exits.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let pid = child.id().to_string();
    let killer = std::thread::spawn(move || {
        use std::sync::atomic::Ordering;
        use std::sync::mpsc::RecvTimeoutError::Timeout;
        const SLICE: std::time::Duration = std::time::Duration::from_millis(50);
        // The sender is dropped when the step has exited: only a timeout means "still running".
        loop {
            if kill.cancel.load(Ordering::SeqCst)
                || kill
                    .deadline
                    .is_some_and(|d| std::time::Instant::now() >= d)
            {
                break;
            }
            let slice = kill.deadline.map_or(SLICE, |d| {
                d.saturating_duration_since(std::time::Instant::now())
                    .min(SLICE)
            });
            if done_rx.recv_timeout(slice) != Err(Timeout) {
                return;
            }
        }
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        if done_rx.recv_timeout(kill.grace) != Err(Timeout) {
            return;
        }
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
    });
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut pumps = Vec::new();
    let out: Option<Box<dyn Read + Send>> = child
        .stdout
        .take()
        .map(|s| Box::new(s) as Box<dyn Read + Send>);
    let err: Option<Box<dyn Read + Send>> = child
        .stderr
        .take()
        .map(|s| Box::new(s) as Box<dyn Read + Send>);
    for pipe in [out, err].into_iter().flatten() {
        let tx = tx.clone();
        let file = file.clone();
        pumps.push(std::thread::spawn(move || {
            let mut r = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\n', '\r'])
                            .to_string();
                        if let Ok(mut f) = file.lock() {
                            let _ = writeln!(f, "{line}");
                        }
                        let _ = tx.send(line);
                    }
                }
            }
        }));
    }
    drop(tx);
    for line in rx {
        observer.line(task, step, &line);
    }
    for p in pumps {
        let _ = p.join();
    }
    let status = child.wait()?;
    drop(done_tx);
    let _ = killer.join();
    Ok(status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + status.signal().unwrap_or(0)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_tekton_paths_only_at_value_boundaries() {
        let m = PathMap {
            results: PathBuf::from("/tmp/r"),
            home: PathBuf::from("/tmp/h"),
        };
        assert_eq!(m.map("/tekton/results"), "/tmp/r");
        assert_eq!(
            m.map("--results-dir=/tekton/results/X"),
            "--results-dir=/tmp/r/X"
        );
        assert_eq!(m.map("/tekton/home/.config"), "/tmp/h/.config");
        assert_eq!(m.map("/tekton/resultsX"), "/tekton/resultsX");
        assert_eq!(m.map("x/tekton/results"), "x/tekton/results");
    }
}
