//! DDS discovery stays on this machine unless the user opts in: with
//! `ROS_AUTOMATIC_DISCOVERY_RANGE` unset, rrl sets it to `LOCALHOST` for
//! itself and every process it starts, so no robot command or learner
//! weight is offered to the network by default. The environment opts in to
//! a wider range (`SUBNET`, `SYSTEM_DEFAULT`); a value rcl would not know
//! is refused, naming the variable.

use std::sync::OnceLock;

pub const VARIABLE: &str = "ROS_AUTOMATIC_DISCOVERY_RANGE";
const RANGES: [&str; 4] = ["LOCALHOST", "SUBNET", "SYSTEM_DEFAULT", "OFF"];

/// The range in force, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InForce {
    pub range: String,
    /// `rrl` (its default) or `environment` (the user's opt-in).
    pub from: &'static str,
}

static IN_FORCE: OnceLock<InForce> = OnceLock::new();

/// Sets the default where the environment is silent; called first in
/// `main`, while the process has a single thread (no DDS participant yet).
pub fn enforce() -> Result<&'static InForce, String> {
    let in_force = match std::env::var(VARIABLE) {
        Ok(range) if RANGES.contains(&range.as_str()) => InForce { range, from: "environment" },
        Ok(range) if !range.is_empty() => {
            return Err(format!("{VARIABLE}={range:?} is not a discovery range: use LOCALHOST (rrl's default), SUBNET or SYSTEM_DEFAULT (other machines too), or OFF"));
        }
        Err(std::env::VarError::NotUnicode(_)) => return Err(format!("{VARIABLE} is not valid UTF-8")),
        _ => {
            std::env::set_var(VARIABLE, "LOCALHOST");
            InForce { range: "LOCALHOST".into(), from: "rrl" }
        }
    };
    Ok(IN_FORCE.get_or_init(|| in_force))
}

/// The range `enforce` put in force (LOCALHOST before it ran).
pub fn in_force() -> InForce {
    IN_FORCE.get().cloned().unwrap_or(InForce { range: "LOCALHOST".into(), from: "rrl" })
}
