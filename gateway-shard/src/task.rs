//! Helper for tasks tied to the lifetime of their owner.

/// Aborts the task when dropped, so a helper task never outlives the future that spawned it.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
