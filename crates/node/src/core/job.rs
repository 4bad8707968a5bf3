//! A job's recorded states: what the job store keeps and a restarted node resumes from.

use std::str::FromStr;

/// Where a job is in its life. Each step is recorded before the next begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobState {
    /// Won; nothing done yet.
    Assigned,
    /// Program and inputs are in the verified cache.
    Fetched,
    /// Executed locally; PGUs and outputs match the network's.
    Executed,
    /// Proven and verified locally; the proof file is written.
    Proved,
    /// FulfillProof was sent; the answer may not have arrived.
    Submitted,
    /// The network accepted the proof.
    Done,
    /// Given up (the reason is kept).
    Failed,
}

impl JobState {
    /// The state's name as stored and shown.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Assigned => "assigned",
            Self::Fetched => "fetched",
            Self::Executed => "executed",
            Self::Proved => "proved",
            Self::Submitted => "submitted",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    /// Whether the job is over.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }
}

impl FromStr for JobState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "assigned" => Self::Assigned,
            "fetched" => Self::Fetched,
            "executed" => Self::Executed,
            "proved" => Self::Proved,
            "submitted" => Self::Submitted,
            "done" => Self::Done,
            "failed" => Self::Failed,
            other => return Err(format!("unknown job state {other:?}")),
        })
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
