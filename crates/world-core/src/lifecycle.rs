//! The lifecycle of everything the runtime records: one state enum for
//! worlds and snapshots, and the transitions it allows.
//!
//! The substrate reports a world's live state in it (a live supervisor is
//! `running`, or `paused` while its cgroup is frozen; a dead one is
//! `lost`), the engine checks each verb against [`State::apply`] before
//! doing it, and the records store the result (`state` of
//! `world_runtime_entities`). A world is born `running` and a snapshot
//! `snapshotted`:
//!
//! ```text
//!   running --pause--> paused --resume--> running
//!   running | paused --collapse--> collapsed       (a verse lost a resolution)
//!   running | paused | snapshotted | lost --destroy--> destroyed
//!   running | paused | snapshotted --lose--> lost  (its supervisor died)
//! ```
//!
//! `collapsed` and `destroyed` are final. Records written before this
//! enum existed said `deleted` for a deleted snapshot and the substrate
//! said `dead` for a lost world; both still read.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The state of a world or a snapshot.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// A world whose processes run: exec, code, snapshot and branch work.
    #[default]
    Running,
    /// A world frozen by `pause`: its processes stopped, its memory kept.
    Paused,
    /// A snapshot: files and session memory kept; branches start from it.
    Snapshotted,
    /// A world whose verse lost a resolution: released, never to run again.
    Collapsed,
    /// Destroyed by a user (a world), or deleted (a snapshot).
    #[serde(alias = "deleted")]
    Destroyed,
    /// Gone without a destroy: its supervisor died (a crash, a reboot).
    #[serde(alias = "dead")]
    Lost,
}

/// What a state belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A world (a sandbox).
    World,
    /// A snapshot of a world.
    Snapshot,
}

/// What happens to an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// Freeze a world.
    Pause,
    /// Thaw a paused world.
    Resume,
    /// Release the world of a verse that lost.
    Collapse,
    /// Destroy a world or delete a snapshot.
    Destroy,
    /// Find its supervisor dead.
    Lose,
}

impl Event {
    /// The verb, for messages.
    pub fn verb(self) -> &'static str {
        match self {
            Event::Pause => "paused",
            Event::Resume => "resumed",
            Event::Collapse => "collapsed",
            Event::Destroy => "destroyed",
            Event::Lose => "lost",
        }
    }
}

/// A transition the lifecycle does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{} that is {from} cannot be {}", if *.from == State::Snapshotted { "a snapshot" } else { "a world" }, .event.verb())]
pub struct TransitionError {
    /// The state it is in.
    pub from: State,
    /// What was asked.
    pub event: Event,
}

impl State {
    /// Every state.
    pub const ALL: [State; 6] = [
        State::Running,
        State::Paused,
        State::Snapshotted,
        State::Collapsed,
        State::Destroyed,
        State::Lost,
    ];

    /// The state an entity of `kind` is born in.
    pub fn born(kind: Kind) -> State {
        match kind {
            Kind::World => State::Running,
            Kind::Snapshot => State::Snapshotted,
        }
    }

    /// The state after `event`, or why it cannot happen.
    pub fn apply(self, event: Event) -> Result<State, TransitionError> {
        use State::*;
        let next = match (self, event) {
            (Running, Event::Pause) => Paused,
            (Paused, Event::Resume) => Running,
            (Running | Paused, Event::Collapse) => Collapsed,
            (Running | Paused | Snapshotted | Lost, Event::Destroy) => Destroyed,
            (Running | Paused | Snapshotted, Event::Lose) => Lost,
            (from, event) => return Err(TransitionError { from, event }),
        };
        Ok(next)
    }

    /// Whether nothing can happen to it any more.
    pub fn is_final(self) -> bool {
        matches!(self, State::Collapsed | State::Destroyed)
    }

    /// Whether commands, code, snapshots and branches may run in it.
    pub fn can_exec(self) -> bool {
        self == State::Running
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Paused => "paused",
            State::Snapshotted => "snapshotted",
            State::Collapsed => "collapsed",
            State::Destroyed => "destroyed",
            State::Lost => "lost",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is not a state (running, paused, snapshotted, collapsed, destroyed, lost)")]
pub struct UnknownState(pub String);

impl FromStr for State {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<State, UnknownState> {
        match s {
            "deleted" => return Ok(State::Destroyed),
            "dead" => return Ok(State::Lost),
            _ => {}
        }
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EVENTS: [Event; 5] = [
        Event::Pause,
        Event::Resume,
        Event::Collapse,
        Event::Destroy,
        Event::Lose,
    ];

    fn event() -> impl Strategy<Value = Event> {
        (0..EVENTS.len()).prop_map(|i| EVENTS[i])
    }

    #[test]
    fn names_round_trip_and_old_names_read() {
        for s in State::ALL {
            assert_eq!(s.as_str().parse::<State>(), Ok(s));
            let j = serde_json::to_string(&s).unwrap();
            assert_eq!(j, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<State>(&j).unwrap(), s);
        }
        assert_eq!("deleted".parse::<State>(), Ok(State::Destroyed));
        assert_eq!(
            serde_json::from_str::<State>("\"dead\"").unwrap(),
            State::Lost
        );
        assert!("zombie".parse::<State>().is_err());
    }

    #[test]
    fn messages_say_what_was_refused() {
        let e = State::Paused.apply(Event::Pause).unwrap_err();
        assert_eq!(e.to_string(), "a world that is paused cannot be paused");
        let e = State::Snapshotted.apply(Event::Pause).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a snapshot that is snapshotted cannot be paused"
        );
    }

    proptest! {
        /// Along any sequence of events from birth: final states refuse
        /// everything, a snapshot never runs, `paused` is only ever
        /// entered from `running` and left by resume, collapse or an end,
        /// and a refused event changes nothing.
        #[test]
        fn transitions_keep_the_lifecycle(world in any::<bool>(), events in proptest::collection::vec(event(), 0..40)) {
            let kind = if world { Kind::World } else { Kind::Snapshot };
            let mut s = State::born(kind);
            for e in events {
                match s.apply(e) {
                    Ok(next) => {
                        prop_assert!(!s.is_final(), "{s} left by {e:?}");
                        if kind == Kind::Snapshot {
                            prop_assert!(matches!(next, State::Destroyed | State::Lost), "a snapshot became {next}");
                        }
                        if next == State::Paused {
                            prop_assert_eq!((s, e), (State::Running, Event::Pause));
                        }
                        if next == State::Running {
                            prop_assert_eq!((s, e), (State::Paused, Event::Resume));
                        }
                        if s == State::Paused {
                            prop_assert!(matches!(e, Event::Resume | Event::Collapse | Event::Destroy | Event::Lose));
                        }
                        s = next;
                    }
                    Err(err) => prop_assert_eq!(err, TransitionError { from: s, event: e }),
                }
            }
        }

        /// Every state but a final one can still be destroyed: nothing is
        /// left that a user cannot clean up.
        #[test]
        fn everything_not_final_can_be_destroyed(i in 0usize..6) {
            let s = State::ALL[i];
            prop_assert_eq!(s.apply(Event::Destroy).is_ok(), !s.is_final());
        }
    }
}
