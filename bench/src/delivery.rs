//! The delivery check: which of the posted messages each session should have received (those
//! of its guilds posted wholly inside one of its live windows) against what it received —
//! missing, duplicated, and lost while away.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::gateway::{Outcome, SessionRecord};
use crate::report::{EventIssue, MAX_LISTED_EVENTS};
use crate::stats::Tally;

/// Longest a POST can take (the REST timeout plus a margin): bounds the search for messages
/// whose POST overlapped a window.
const LONGEST_POST_NANOS: u64 = 31_000_000_000;

/// A message the bench posted and the server accepted.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Posted {
    /// Message id from the POST response.
    pub id: u64,
    /// Guild of the channel.
    pub guild: u64,
    /// Channel posted in.
    pub channel: u64,
    /// Unix ns just before the request went out (also in the content).
    pub start_ns: u64,
    /// Unix ns once the response was read.
    pub end_ns: u64,
}

/// Delivery figures for the sessions of one outcome.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tallies {
    /// Sessions.
    pub sessions: u64,
    /// Deliveries they should have had.
    pub expected: u64,
    /// Bench messages they received (duplicates included).
    pub received: u64,
    /// Expected and never received.
    pub missing: u64,
    /// Received more than once (each extra copy counts).
    pub duplicates: u64,
    /// Posted while the session was away (re-identified or lost) and never received.
    pub lost_events: u64,
    /// Dispatches whose `s` did not follow the previous one.
    pub seq_gaps: u64,
    /// Sessions with at least one sequence gap.
    pub sessions_with_gaps: u64,
}

impl Tallies {
    fn add(&mut self, other: &Tallies) {
        self.sessions += other.sessions;
        self.expected += other.expected;
        self.received += other.received;
        self.missing += other.missing;
        self.duplicates += other.duplicates;
        self.lost_events += other.lost_events;
        self.seq_gaps += other.seq_gaps;
        self.sessions_with_gaps += other.sessions_with_gaps;
    }
}

/// The check's result, by session outcome.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeliveryCheck {
    /// Figures per outcome (`held`, `resumed`, `reidentified`, `lost`, `never_ready`).
    pub by_outcome: BTreeMap<String, Tallies>,
    /// Problems one by one, at most [`MAX_LISTED_EVENTS`].
    pub events: Vec<EventIssue>,
    /// Problems beyond the listed ones.
    pub events_not_listed: u64,
    /// Sequence gaps of each session that had any (at most [`MAX_LISTED_EVENTS`] sessions).
    pub gaps_by_session: Tally,
}

impl DeliveryCheck {
    /// Adds another worker's check.
    pub fn merge(&mut self, other: DeliveryCheck) {
        for (outcome, tallies) in &other.by_outcome {
            self.by_outcome
                .entry(outcome.clone())
                .or_default()
                .add(tallies);
        }
        self.events_not_listed += other.events_not_listed;
        for (session, gaps) in other.gaps_by_session {
            if self.gaps_by_session.len() < MAX_LISTED_EVENTS {
                self.gaps_by_session.insert(session, gaps);
            }
        }
        for event in other.events {
            self.note(event);
        }
    }

    /// Sums over every outcome.
    pub fn total(&self) -> Tallies {
        let mut total = Tallies::default();
        for tallies in self.by_outcome.values() {
            total.add(tallies);
        }
        total
    }

    fn note(&mut self, event: EventIssue) {
        if self.events.len() < MAX_LISTED_EVENTS {
            self.events.push(event);
        } else {
            self.events_not_listed += 1;
        }
    }
}

/// Checks every session's receipts against the posted messages.
pub fn check(records: &[SessionRecord], posted: &[Posted]) -> DeliveryCheck {
    let mut by_guild: HashMap<u64, Vec<Posted>> = HashMap::new();
    for message in posted {
        by_guild.entry(message.guild).or_default().push(*message);
    }
    for messages in by_guild.values_mut() {
        messages.sort_unstable_by_key(|m| m.start_ns);
    }
    let mut result = DeliveryCheck::default();
    for record in records {
        let outcome = record.outcome.name();
        let mut tallies = Tallies {
            sessions: 1,
            received: record.received.len() as u64,
            seq_gaps: record.seq_gaps,
            sessions_with_gaps: u64::from(record.seq_gaps > 0),
            ..Tallies::default()
        };
        if record.seq_gaps > 0 && result.gaps_by_session.len() < MAX_LISTED_EVENTS {
            result
                .gaps_by_session
                .insert(record.index.to_string(), record.seq_gaps);
        }
        let mut received = record.received.clone();
        received.sort_unstable();
        let issue = |kind: &str, message_id: u64, channel_id: u64| EventIssue {
            kind: kind.to_owned(),
            session: record.index,
            outcome: outcome.to_owned(),
            message_id,
            channel_id,
        };
        let mut issues = Vec::new();
        for pair in received.windows(2) {
            if pair[0] == pair[1] {
                tallies.duplicates += 1;
                issues.push(issue("duplicate", pair[0], 0));
            }
        }
        received.dedup();
        let got = |id: u64| received.binary_search(&id).is_ok();
        if record.outcome != Outcome::NeverReady {
            for guild in &record.guilds {
                let Some(messages) = by_guild.get(guild) else {
                    continue;
                };
                for &(from, to) in &record.live {
                    let first = messages.partition_point(|m| m.start_ns < from);
                    for m in messages[first..].iter().take_while(|m| m.start_ns <= to) {
                        if m.end_ns <= to {
                            tallies.expected += 1;
                            if !got(m.id) {
                                tallies.missing += 1;
                                issues.push(issue("missing", m.id, m.channel));
                            }
                        }
                    }
                }
                for &(from, to) in &record.away {
                    let first = messages
                        .partition_point(|m| m.start_ns < from.saturating_sub(LONGEST_POST_NANOS));
                    for m in messages[first..].iter().take_while(|m| m.start_ns < to) {
                        if m.end_ns > from && !got(m.id) {
                            tallies.lost_events += 1;
                            issues.push(issue("lost", m.id, m.channel));
                        }
                    }
                }
            }
        }
        result
            .by_outcome
            .entry(outcome.to_owned())
            .or_default()
            .add(&tallies);
        for event in issues {
            result.note(event);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posted(id: u64, guild: u64, start: u64) -> Posted {
        Posted {
            id,
            guild,
            channel: guild * 10,
            start_ns: start,
            end_ns: start + 5,
        }
    }

    fn record(
        outcome: Outcome,
        live: Vec<(u64, u64)>,
        away: Vec<(u64, u64)>,
        received: Vec<u64>,
    ) -> SessionRecord {
        SessionRecord {
            index: 7,
            outcome,
            guilds: vec![1],
            live,
            away,
            received,
            seq_gaps: 0,
        }
    }

    #[test]
    fn counts_missing_duplicates_and_lost_events() {
        let messages = vec![
            posted(1, 1, 100),
            posted(2, 1, 200),
            posted(3, 2, 200),
            posted(4, 1, 300),
            posted(5, 1, 400),
        ];
        let held = record(Outcome::Held, vec![(50, 1000)], vec![], vec![1, 2, 2, 4]);
        // Ready at 150: message 1 was before, message 3 is another guild's.
        let late = record(Outcome::Held, vec![(150, 1000)], vec![], vec![2, 4, 5]);
        // Away from 250 to 350 after re-identifying: message 4 lost, 5 expected.
        let reidentified = record(
            Outcome::Reidentified,
            vec![(50, 250), (350, 1000)],
            vec![(250, 350)],
            vec![1, 2, 5],
        );
        let check = check(&[held, late, reidentified], &messages);
        let held = check.by_outcome["held"];
        assert_eq!(
            (held.sessions, held.expected, held.missing, held.duplicates),
            (2, 7, 1, 1)
        );
        let re = check.by_outcome["reidentified"];
        assert_eq!((re.expected, re.missing, re.lost_events), (3, 0, 1));
        let kinds: Vec<&str> = check.events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["duplicate", "missing", "lost"]);
        assert_eq!(check.events[1].message_id, 5);
        assert_eq!(check.total().missing, 1);
    }

    #[test]
    fn sequence_gaps_are_kept_per_session() {
        let mut gappy = record(Outcome::Held, vec![(0, 10)], vec![], vec![]);
        gappy.seq_gaps = 2;
        let check = check(&[gappy], &[]);
        assert_eq!(check.gaps_by_session["7"], 2);
        let total = check.total();
        assert_eq!((total.seq_gaps, total.sessions_with_gaps), (2, 1));
    }

    #[test]
    fn merging_adds_up() {
        let mut a = check(
            &[record(Outcome::Held, vec![(0, 10)], vec![], vec![])],
            &[posted(1, 1, 1)],
        );
        let b = a.clone();
        a.merge(b);
        assert_eq!(a.total().missing, 2);
        assert_eq!(a.events.len(), 2);
    }
}
