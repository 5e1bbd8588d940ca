//! The per-connection command budget: 120 client payloads per 60 seconds.

use concord_core::gateway::{COMMANDS_PER_WINDOW, COMMAND_WINDOW_SECS};
use tokio::time::{Duration, Instant};

/// A fixed window that opens with the first payload after the previous one closed.
#[derive(Debug)]
pub(crate) struct CommandBudget {
    opened: Instant,
    used: u32,
}

impl CommandBudget {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            opened: now,
            used: 0,
        }
    }

    /// Counts one payload; false once the window's budget is exceeded.
    pub(crate) fn spend(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.opened) >= Duration::from_secs(COMMAND_WINDOW_SECS) {
            self.opened = now;
            self.used = 0;
        }
        self.used += 1;
        self.used <= COMMANDS_PER_WINDOW
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn allows_120_per_minute() {
        let mut budget = CommandBudget::new(Instant::now());
        for _ in 0..120 {
            assert!(budget.spend(Instant::now()));
        }
        assert!(!budget.spend(Instant::now()));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(budget.spend(Instant::now()));
    }
}
