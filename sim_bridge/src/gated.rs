//! The safety gate as a simulated task ticks it: at the controller's rate
//! between the task's controller and its actuators, counting the gate's
//! interventions and recording its ticks for the risk critic, as a real
//! robot's control thread does.

use rrl_types::{GateTick, JointCommand, JointState, SafetyEvents, TickDecimator};
use safety::{Gate, Verdict};

/// Recorded gate ticks that may wait for `take_ticks`: a bound for a task
/// whose ticks nobody takes (a robot node's own gate).
const MAX_UNTAKEN_TICKS: usize = 1 << 16;

pub struct SimGate {
    gate: Gate,
    events: SafetyEvents,
    /// Ticks recorded for risk-critic training, when asked for.
    ticks: Option<(TickDecimator, Vec<GateTick>)>,
}

impl SimGate {
    pub fn new(gate: Gate) -> SimGate {
        SimGate { gate, events: SafetyEvents::default(), ticks: None }
    }

    /// Records the gate's ticks (`safety::Gate::tick_record`) as
    /// `decimator` keeps them; at most `MAX_UNTAKEN_TICKS` wait to be
    /// taken, later ones are dropped until some are.
    pub fn record_ticks(&mut self, decimator: TickDecimator) {
        self.ticks = Some((decimator, Vec::new()));
    }

    /// One tick: what of `command` may be sent, given the measured `state`
    /// (no values when nothing may be sent yet).
    pub fn check(&mut self, state: &JointState, command: &JointCommand) -> JointCommand {
        let now = state.stamp;
        let mut out = *command;
        let verdict = self.gate.check(now, state, command, &mut out);
        if verdict.is_protective() {
            self.events.protective += 1;
        }
        if matches!(verdict, Verdict::Reflex { .. }) {
            self.events.reflexes += 1;
        }
        if let Some((decimator, log)) = self.ticks.as_mut() {
            decimator.feed(self.gate.tick_record(now, state, &verdict, &out), |tick| {
                if log.len() < MAX_UNTAKEN_TICKS {
                    log.push(tick);
                }
            });
        }
        out
    }

    /// A teleported robot: the limiter restarts from the new state, and
    /// the new episode's interventions count from zero.
    pub fn restart(&mut self) {
        self.gate.forget_motion();
        self.events = SafetyEvents::default();
    }

    pub fn take_events(&mut self) -> SafetyEvents {
        std::mem::take(&mut self.events)
    }

    pub fn take_ticks(&mut self, out: &mut Vec<GateTick>) {
        if let Some((_, log)) = self.ticks.as_mut() {
            out.append(log);
        }
    }

    /// Puts a risk critic trained during practice into the gate.
    pub fn offer_risk_critic(&mut self, layers: &[(Vec<Vec<f32>>, Vec<f32>)], acting: bool) -> Result<(), String> {
        let critic = safety::RiskCritic::from_layers(layers.to_vec())?;
        self.gate.replace_risk_critic(critic, acting).map_err(|e| e.to_string())
    }
}
