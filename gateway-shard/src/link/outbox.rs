//! [`Outbox`]: the queue in front of a link's socket writer, shared by every session on it.

use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

/// Why [`Outbox::try_push`] refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `limit` messages are already waiting.
    Full,
    /// The link is gone.
    Closed,
}

#[derive(Debug)]
struct State<T> {
    queue: Vec<T>,
    closed: bool,
}

/// A many-producer, one-consumer queue. Ordinary traffic is bounded by `limit`; control
/// messages ([`Outbox::push`]) always get in, so a full link can still tell a session to close.
#[derive(Debug)]
pub(crate) struct Outbox<T> {
    state: Mutex<State<T>>,
    ready: Notify,
    limit: usize,
}

impl<T> Outbox<T> {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            state: Mutex::new(State {
                queue: Vec::new(),
                closed: false,
            }),
            ready: Notify::new(),
            limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Only pushes and swaps happen under the lock; a poisoned queue is still a queue.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item` unless `limit` items wait already or the outbox is closed.
    pub(crate) fn try_push(&self, item: T) -> Result<(), Refused> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.queue.len() >= self.limit {
            return Err(Refused::Full);
        }
        state.queue.push(item);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Queues `item` whatever the queue's length; false when the outbox is closed.
    pub(crate) fn push(&self, item: T) -> bool {
        let mut state = self.lock();
        if state.closed {
            return false;
        }
        state.queue.push(item);
        drop(state);
        self.ready.notify_one();
        true
    }

    /// Closes the outbox: pushes fail from now on, and [`Outbox::take`] returns what is left,
    /// then `false`.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// Waits for messages and moves all of them into `into` (which should be empty); false
    /// once the outbox is closed and drained. One consumer only.
    pub(crate) async fn take(&self, into: &mut Vec<T>) -> bool {
        loop {
            {
                let mut state = self.lock();
                if !state.queue.is_empty() {
                    std::mem::swap(&mut state.queue, into);
                    return true;
                }
                if state.closed {
                    return false;
                }
            }
            // `notify_one` stores a permit when nobody waits, so a push between the check
            // above and this wait is not missed.
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_for_traffic_open_for_control() {
        let outbox = Outbox::new(2);
        assert_eq!(outbox.try_push(1), Ok(()));
        assert_eq!(outbox.try_push(2), Ok(()));
        assert_eq!(outbox.try_push(3), Err(Refused::Full));
        assert!(outbox.push(4), "control gets in");
        let mut batch = Vec::new();
        assert!(outbox.take(&mut batch).await);
        assert_eq!(batch, vec![1, 2, 4]);
        outbox.close();
        assert_eq!(outbox.try_push(5), Err(Refused::Closed));
        assert!(!outbox.push(6));
        batch.clear();
        assert!(!outbox.take(&mut batch).await);
    }

    #[tokio::test]
    async fn a_waiting_consumer_wakes_on_push() {
        let outbox = std::sync::Arc::new(Outbox::new(8));
        let consumer = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let mut batch = Vec::new();
                outbox.take(&mut batch).await;
                batch
            })
        };
        tokio::task::yield_now().await;
        outbox.push(7);
        assert_eq!(consumer.await.unwrap(), vec![7]);
    }
}
