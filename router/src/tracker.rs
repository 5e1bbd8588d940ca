//! Counts open connections so shutdown can wait for them to drain.

use tokio::sync::watch;

/// Number of connections in flight.
#[derive(Debug)]
pub(crate) struct ConnectionTracker {
    count: watch::Sender<usize>,
}

/// Held by a connection task for its whole life.
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    count: watch::Sender<usize>,
}

impl ConnectionTracker {
    pub(crate) fn new() -> Self {
        Self {
            count: watch::Sender::new(0),
        }
    }

    /// Registers a connection until the guard drops.
    pub(crate) fn enter(&self) -> ConnectionGuard {
        self.count.send_modify(|count| *count += 1);
        ConnectionGuard {
            count: self.count.clone(),
        }
    }

    /// Open connections.
    pub(crate) fn count(&self) -> usize {
        *self.count.borrow()
    }

    /// Resolves once no connection is open.
    pub(crate) async fn idle(&self) {
        let mut count = self.count.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = count.wait_for(|count| *count == 0).await;
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.count
            .send_modify(|count| *count = count.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_waits_for_every_guard() {
        let tracker = ConnectionTracker::new();
        let a = tracker.enter();
        let b = tracker.enter();
        assert_eq!(tracker.count(), 2);
        drop(a);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), tracker.idle())
                .await
                .is_err()
        );
        drop(b);
        tracker.idle().await;
    }
}
