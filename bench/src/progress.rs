//! The live status line: a spinner with current rates on a terminal, a plain line every few
//! seconds otherwise, nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;

/// Time between plain lines when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Where progress goes.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: Option<Mutex<Instant>>,
    started: Instant,
}

impl Progress {
    /// A spinner on a terminal, plain lines on other stderr, or nothing when `quiet`.
    pub fn new(quiet: bool) -> Self {
        let started = Instant::now();
        if quiet {
            return Self {
                bar: None,
                plain: None,
                started,
            };
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {prefix:.bold} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            Self {
                bar: Some(bar),
                plain: None,
                started,
            }
        } else {
            Self {
                bar: None,
                plain: Some(Mutex::new(started)),
                started,
            }
        }
    }

    /// Names the current phase.
    pub fn phase(&self, phase: &str) {
        if let Some(bar) = &self.bar {
            bar.set_prefix(phase.to_owned());
        } else if self.plain.is_some() {
            eprintln!("[{:>6.1}s] {phase}", self.started.elapsed().as_secs_f64());
        }
    }

    /// Replaces the status line.
    pub fn status(&self, line: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(line);
        } else if let Some(last) = &self.plain {
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() >= PLAIN_EVERY {
                *last = Instant::now();
                eprintln!("[{:>6.1}s] {line}", self.started.elapsed().as_secs_f64());
            }
        }
    }

    /// Removes the spinner.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
