//! What the bench's integration tests share: a scratch directory and running the real `bench`
//! binary with its JSON report.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

/// A directory for one test's fixtures and reports, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh directory named after `name`, the process and a random suffix.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "concord-bench-{name}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// The directory.
    // Every test crate compiles this module; not every one needs the directory itself.
    #[allow(dead_code)]
    pub fn dir(&self) -> &Path {
        &self.0
    }

    /// `file` inside the directory, as a string for command lines.
    pub fn path(&self, file: &str) -> String {
        self.0.join(file).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the `bench` binary with `args` and `--quiet`.
pub async fn bench<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .arg("--quiet")
        .output()
        .await
        .expect("bench runs")
}

/// Fails with the run's output unless it exited 0.
#[track_caller]
pub fn succeeded(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The JSON report written to `path`.
pub fn report(path: &str) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("the JSON report exists")).unwrap()
}

/// Figure `name` of a report.
#[track_caller]
pub fn figure(report: &Value, name: &str) -> f64 {
    report["figures"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("figure `{name}` in {}", report["figures"]))
}
