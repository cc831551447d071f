//! State machines: job, execution (compute and desired), and the generic `State<T>` wrapper with its wire encoding.
//!
//! JobStateType travels as a string; ExecutionStateType and ExecutionDesiredStateType travel as integers.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A state value together with a human-readable message and details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct State<T: Default> {
    #[serde(rename = "StateType")]
    pub state_type: T,
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "Details", skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

impl<T: Default> State<T> {
    /// A state with a message and no details.
    pub fn new(state_type: T, message: impl Into<String>) -> Self {
        Self {
            state_type,
            message: message.into(),
            details: BTreeMap::new(),
        }
    }
}

/// A job's lifecycle state; serialised as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum JobStateType {
    #[default]
    Undefined,
    Pending,
    Queued,
    Running,
    Completed,
    Failed,
    Stopped,
}

impl JobStateType {
    pub const ALL: [JobStateType; 7] = [
        Self::Undefined,
        Self::Pending,
        Self::Queued,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Stopped,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Undefined => "Undefined",
            Self::Pending => "Pending",
            Self::Queued => "Queued",
            Self::Running => "Running",
            Self::Completed => "Completed",
            Self::Failed => "Failed",
            Self::Stopped => "Stopped",
        }
    }

    /// Parses a wire name (case-insensitive) or the integer form older clients may send.
    pub fn parse(s: &str) -> Option<Self> {
        if let Ok(n) = s.parse::<i64>() {
            return Self::from_int(n);
        }
        Self::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }

    fn from_int(n: i64) -> Option<Self> {
        usize::try_from(n)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// Completed, Failed and Stopped are final.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Stopped)
    }

    /// Whether the job may move from `self` to `next` (see WIRE-FACTS section 2).
    pub fn can_transition_to(self, next: JobStateType) -> bool {
        use JobStateType::*;
        match (self, next) {
            (a, b) if a == b => true,
            // Submit, update or rerun resets to Pending.
            (_, Pending) => true,
            (Pending | Queued, Running) => true,
            (Pending | Running, Queued) => true,
            (Pending | Queued | Running, Completed) => true,
            (Pending | Queued | Running, Failed) => true,
            (Pending | Queued | Running | Failed, Stopped) => true,
            (Undefined, _) => true,
            _ => false,
        }
    }
}

impl std::fmt::Display for JobStateType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for JobStateType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JobStateType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let parsed = match &v {
            serde_json::Value::String(s) => Self::parse(s),
            serde_json::Value::Number(n) => n.as_i64().and_then(Self::from_int),
            serde_json::Value::Null => Some(Self::Undefined),
            _ => None,
        };
        parsed.ok_or_else(|| serde::de::Error::custom(format!("invalid job state {v}")))
    }
}

macro_rules! int_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $n:expr),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub enum $name {
            #[default]
            $($variant),+
        }

        impl $name {
            /// The wire integer.
            pub fn as_i64(self) -> i64 {
                match self { $(Self::$variant => $n),+ }
            }

            /// The variant for a wire integer.
            pub fn from_i64(n: i64) -> Option<Self> {
                match n { $($n => Some(Self::$variant),)+ _ => None }
            }

            /// The variant's name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => stringify!($variant)),+ }
            }

            /// Parses a name (case-insensitive) or an integer.
            pub fn parse(s: &str) -> Option<Self> {
                if let Ok(n) = s.parse::<i64>() {
                    return Self::from_i64(n);
                }
                [$(Self::$variant),+].into_iter().find(|v| v.as_str().eq_ignore_ascii_case(s))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_i64(self.as_i64())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = serde_json::Value::deserialize(d)?;
                let parsed = match &v {
                    serde_json::Value::Number(n) => n.as_i64().and_then(Self::from_i64),
                    serde_json::Value::String(s) => Self::parse(s),
                    serde_json::Value::Null => Some(Self::default()),
                    _ => None,
                };
                parsed.ok_or_else(|| serde::de::Error::custom(format!("invalid {} {v}", stringify!($name))))
            }
        }
    };
}

int_enum!(
    /// What the compute node reports about an execution; serialised as an integer.
    ExecutionStateType {
        Undefined = 0,
        New = 1,
        AskForBid = 2,
        AskForBidAccepted = 3,
        AskForBidRejected = 4,
        BidAccepted = 5,
        Running = 6,
        Publishing = 7,
        BidRejected = 8,
        Completed = 9,
        Failed = 10,
        Cancelled = 11,
    }
);

impl ExecutionStateType {
    /// AskForBidRejected, BidRejected, Completed, Failed and Cancelled are final.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::AskForBidRejected
                | Self::BidRejected
                | Self::Completed
                | Self::Failed
                | Self::Cancelled
        )
    }

    /// BidAccepted, Running and Publishing: the workload holds resources on the node.
    pub fn is_executing(self) -> bool {
        matches!(self, Self::BidAccepted | Self::Running | Self::Publishing)
    }

    /// Whether an execution may move from `self` to `next` (see WIRE-FACTS section 2): forward along
    /// New, AskForBid, AskForBidAccepted, BidAccepted, Running, Publishing, Completed (steps may be
    /// skipped, as a report can overtake another); rejections only at the bid stage; Failed and
    /// Cancelled from any non-terminal state; nothing out of a terminal state.
    pub fn can_transition_to(self, next: ExecutionStateType) -> bool {
        use ExecutionStateType::*;
        if self == next {
            return true;
        }
        if self.is_terminal() || next == Undefined {
            return false;
        }
        let stage = |s: ExecutionStateType| match s {
            Undefined => 0,
            New => 1,
            AskForBid => 2,
            AskForBidAccepted | AskForBidRejected => 3,
            BidAccepted | BidRejected => 4,
            Running => 5,
            Publishing => 6,
            Completed | Failed | Cancelled => 7,
        };
        match next {
            Failed | Cancelled => true,
            AskForBidRejected => stage(self) < stage(AskForBidAccepted),
            BidRejected => stage(self) < stage(BidAccepted),
            Completed => stage(self) >= stage(BidAccepted),
            _ => stage(next) > stage(self),
        }
    }
}

int_enum!(
    /// What the orchestrator wants of an execution; set only by the scheduler; serialised as an integer.
    ExecutionDesiredStateType {
        Pending = 0,
        Running = 1,
        Stopped = 2,
    }
);

impl ExecutionDesiredStateType {
    /// Whether the scheduler may move an execution's desired state from `self` to `next`:
    /// Pending to Running or Stopped, Running to Stopped; Stopped is final.
    pub fn can_transition_to(self, next: ExecutionDesiredStateType) -> bool {
        use ExecutionDesiredStateType::*;
        matches!(
            (self, next),
            (Pending, _) | (Running, Running | Stopped) | (Stopped, Stopped)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_state_transitions() {
        use JobStateType::*;
        let allowed = [
            (Undefined, Pending),
            (Pending, Queued),
            (Pending, Running),
            (Queued, Running),
            (Running, Queued),
            (Running, Completed),
            (Queued, Failed),
            (Running, Failed),
            (Running, Stopped),
            (Failed, Stopped),
            (Completed, Pending),
            (Stopped, Pending),
            (Stopped, Stopped),
        ];
        for (from, to) in allowed {
            assert!(
                from.can_transition_to(to),
                "{from} -> {to} should be allowed"
            );
        }
        let refused = [
            (Completed, Stopped),
            (Completed, Running),
            (Failed, Running),
            (Stopped, Running),
            (Stopped, Completed),
            (Completed, Failed),
            (Queued, Undefined),
        ];
        for (from, to) in refused {
            assert!(
                !from.can_transition_to(to),
                "{from} -> {to} should be refused"
            );
        }
        for state in JobStateType::ALL {
            assert_eq!(
                state.is_terminal(),
                matches!(state, Completed | Failed | Stopped)
            );
            assert_eq!(JobStateType::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn execution_state_transitions() {
        use ExecutionStateType::*;
        let path = [
            New,
            AskForBid,
            AskForBidAccepted,
            BidAccepted,
            Running,
            Publishing,
            Completed,
        ];
        for pair in path.windows(2) {
            assert!(
                pair[0].can_transition_to(pair[1]),
                "{} -> {}",
                pair[0],
                pair[1]
            );
            assert!(
                !pair[1].can_transition_to(pair[0]),
                "{} -> {}",
                pair[1],
                pair[0]
            );
        }
        assert!(
            New.can_transition_to(BidAccepted),
            "pre-approved bids skip the ask"
        );
        assert!(BidAccepted.can_transition_to(Completed));
        assert!(AskForBid.can_transition_to(AskForBidRejected));
        assert!(!Running.can_transition_to(AskForBidRejected));
        assert!(AskForBidAccepted.can_transition_to(BidRejected));
        assert!(!Running.can_transition_to(BidRejected));
        assert!(!AskForBid.can_transition_to(Completed));
        for state in [
            New,
            AskForBid,
            AskForBidAccepted,
            BidAccepted,
            Running,
            Publishing,
        ] {
            assert!(state.can_transition_to(Failed), "{state} -> Failed");
            assert!(state.can_transition_to(Cancelled), "{state} -> Cancelled");
            assert!(!state.can_transition_to(Undefined));
        }
        for terminal in [AskForBidRejected, BidRejected, Completed, Failed, Cancelled] {
            assert!(terminal.is_terminal());
            assert!(!terminal.can_transition_to(Running), "{terminal} is final");
            assert!(!terminal.can_transition_to(Failed) || terminal == Failed);
        }
        assert_eq!(ExecutionStateType::from_i64(9), Some(Completed));
        assert_eq!(ExecutionStateType::parse("bidaccepted"), Some(BidAccepted));
        assert_eq!(ExecutionStateType::parse("6"), Some(Running));
    }

    #[test]
    fn desired_state_transitions() {
        use ExecutionDesiredStateType::*;
        assert!(Pending.can_transition_to(Running));
        assert!(Pending.can_transition_to(Stopped));
        assert!(Running.can_transition_to(Stopped));
        assert!(!Running.can_transition_to(Pending));
        assert!(!Stopped.can_transition_to(Running));
        assert!(!Stopped.can_transition_to(Pending));
    }

    #[test]
    fn state_wire_encoding() {
        let job = serde_json::to_value(State::new(JobStateType::Failed, "boom")).unwrap();
        assert_eq!(
            job,
            serde_json::json!({"StateType": "Failed", "Message": "boom"})
        );
        let back: State<JobStateType> =
            serde_json::from_value(serde_json::json!({"StateType": 5})).unwrap();
        assert_eq!(back.state_type, JobStateType::Failed);
        let exec = serde_json::to_value(State::new(ExecutionStateType::Running, "")).unwrap();
        assert_eq!(exec["StateType"], serde_json::json!(6));
        let back: State<ExecutionStateType> =
            serde_json::from_value(serde_json::json!({"StateType": "Publishing"})).unwrap();
        assert_eq!(back.state_type, ExecutionStateType::Publishing);
        assert!(serde_json::from_value::<ExecutionStateType>(serde_json::json!(99)).is_err());
    }
}
