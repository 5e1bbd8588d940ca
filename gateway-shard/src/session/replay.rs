//! The bounded per-session buffer of sent dispatches that a Resume replays from.

use std::collections::VecDeque;

use crate::frame::OutFrame;

/// The last `capacity` dispatches of a session, in sequence order. Frames share their encoding
/// with every other session that got the same event, so an entry costs a pointer and a number.
#[derive(Debug)]
pub(crate) struct ReplayBuffer {
    frames: VecDeque<OutFrame>,
    capacity: usize,
}

impl ReplayBuffer {
    /// An empty buffer; memory grows with use up to `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            frames: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Appends the next frame, dropping the oldest at capacity.
    pub(crate) fn push(&mut self, frame: OutFrame) {
        if self.frames.len() == self.capacity {
            self.frames.pop_front();
        }
        self.frames.push_back(frame);
    }

    /// Drops the frames the client says it has received: a Resume never asks for a sequence
    /// older than the one its last heartbeat carried, so only unacknowledged frames need keeping.
    /// This bounds an idle session's buffer by what one heartbeat interval brings, not by the
    /// capacity (a large bot's GUILD_CREATEs would otherwise stay until 2048 later dispatches).
    pub(crate) fn acknowledge(&mut self, through: u64) {
        while self.frames.front().is_some_and(|f| f.seq <= through) {
            self.frames.pop_front();
        }
    }

    /// Every frame after `after`, when the buffer still holds all of them; `last` is the
    /// session's newest sequence number. `None` means the client asked for a sequence the
    /// session never sent or one that has been evicted.
    pub(crate) fn after(&self, after: u64, last: u64) -> Option<Vec<OutFrame>> {
        if after > last {
            return None;
        }
        if after == last {
            return Some(Vec::new());
        }
        let first = self.frames.front()?.seq;
        if first > after + 1 {
            return None;
        }
        Some(
            self.frames
                .iter()
                .filter(|f| f.seq > after)
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::EncodedEvent;
    use concord_core::gateway::EventKind;

    fn buffer_with(capacity: usize, count: u64) -> ReplayBuffer {
        let event = EncodedEvent::new(EventKind::MessageCreate, b"{}");
        let mut buffer = ReplayBuffer::new(capacity);
        for seq in 1..=count {
            buffer.push(OutFrame {
                seq,
                event: event.clone(),
            });
        }
        buffer
    }

    fn seqs(frames: Option<Vec<OutFrame>>) -> Option<Vec<u64>> {
        frames.map(|f| f.into_iter().map(|f| f.seq).collect())
    }

    #[test]
    fn replays_exactly_the_missed_frames() {
        let buffer = buffer_with(4, 10);
        assert_eq!(seqs(buffer.after(8, 10)), Some(vec![9, 10]));
        assert_eq!(seqs(buffer.after(6, 10)), Some(vec![7, 8, 9, 10]));
        assert_eq!(seqs(buffer.after(10, 10)), Some(vec![]));
    }

    #[test]
    fn acknowledged_frames_are_dropped_and_resume_from_the_ack_still_works() {
        let mut buffer = buffer_with(16, 10);
        buffer.acknowledge(7);
        assert_eq!(buffer.frames.len(), 3);
        assert_eq!(seqs(buffer.after(7, 10)), Some(vec![8, 9, 10]));
        assert_eq!(
            seqs(buffer.after(6, 10)),
            None,
            "older than the acknowledgement"
        );
        buffer.acknowledge(10);
        assert!(buffer.frames.is_empty());
        assert_eq!(seqs(buffer.after(10, 10)), Some(vec![]));
    }

    #[test]
    fn refuses_evicted_or_future_sequences() {
        let buffer = buffer_with(4, 10);
        assert_eq!(seqs(buffer.after(5, 10)), None, "seq 6 was evicted");
        assert_eq!(seqs(buffer.after(11, 10)), None);
        let whole = buffer_with(16, 3);
        assert_eq!(seqs(whole.after(0, 3)), Some(vec![1, 2, 3]));
        assert_eq!(seqs(ReplayBuffer::new(4).after(0, 0)), Some(vec![]));
    }
}
