//! The control loop: read → newest command → safety gate → write, one tick
//! at a time. The only path from an action source to `write` goes through
//! the gate, and a tick neither allocates nor locks.

use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use rrl_types::{GateTick, JointCommand, JointState, Timestamp};
use safety::{Gate, HoldReason, Verdict};

use crate::hardware::{HardwareError, HardwareInterface};

/// Where action sources (policy, teleop, reset scripts) leave commands for
/// the control loop: one slot, the newest command wins, lock-free.
pub struct CommandSlot(ArrayQueue<JointCommand>);

impl CommandSlot {
    pub fn new() -> Arc<CommandSlot> {
        Arc::new(CommandSlot(ArrayQueue::new(1)))
    }

    /// Replaces whatever command is waiting.
    pub fn offer(&self, command: JointCommand) {
        let _ = self.0.force_push(command);
    }

    fn take(&self) -> Option<JointCommand> {
        self.0.pop()
    }
}

/// Counts of the gate's verdicts since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerdictCounts {
    pub passed: u64,
    pub clipped: u64,
    pub held: u64,
    /// Risk-critic reflexes.
    pub reflexes: u64,
}

pub struct ControlLoop<H: HardwareInterface> {
    hardware: H,
    gate: Gate,
    commands: Arc<CommandSlot>,
    state: JointState,
    /// The newest command received; `None` before the first.
    latest: Option<JointCommand>,
    sent: JointCommand,
    counts: VerdictCounts,
}

impl<H: HardwareInterface> ControlLoop<H> {
    /// Until the first command arrives, the loop holds (an empty command is stale).
    pub fn new(hardware: H, gate: Gate, commands: Arc<CommandSlot>) -> ControlLoop<H> {
        ControlLoop { hardware, gate, commands, state: JointState::default(), latest: None, sent: JointCommand::default(), counts: VerdictCounts::default() }
    }

    pub fn hardware(&self) -> &H {
        &self.hardware
    }

    pub fn hardware_mut(&mut self) -> &mut H {
        &mut self.hardware
    }

    /// Ends the loop, handing the hardware back (for deactivation).
    pub fn into_hardware(self) -> H {
        self.hardware
    }

    pub fn gate(&mut self) -> &mut Gate {
        &mut self.gate
    }

    /// The state read in the last tick.
    pub fn state(&self) -> &JointState {
        &self.state
    }

    /// The command written in the last tick.
    pub fn sent(&self) -> &JointCommand {
        &self.sent
    }

    pub fn counts(&self) -> VerdictCounts {
        self.counts
    }

    /// The last tick as the risk critic's data records it
    /// (`safety::Gate::tick_record`); no allocation.
    pub fn tick_record(&self, now: Timestamp, verdict: &Verdict) -> GateTick {
        self.gate.tick_record(now, &self.state, verdict, &self.sent)
    }

    pub fn tick(&mut self, now: Timestamp) -> Result<Verdict, HardwareError> {
        self.hardware.read(now, &mut self.state)?;
        if let Some(command) = self.commands.take() {
            self.latest = Some(command);
        }
        let verdict = match &self.latest {
            Some(command) => self.gate.check(now, &self.state, command, &mut self.sent),
            None => self.gate.hold(now, &self.state, self.hardware.native_mode(), HoldReason::NoCommand, &mut self.sent),
        };
        match verdict {
            Verdict::Pass => self.counts.passed += 1,
            Verdict::Clipped(_) => self.counts.clipped += 1,
            Verdict::Held(_) => self.counts.held += 1,
            Verdict::Reflex { .. } => self.counts.reflexes += 1,
        }
        // An empty command means the gate has nothing safe to send yet.
        if !self.sent.values.is_empty() {
            self.hardware.write(&self.sent)?;
        }
        Ok(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::MockHardware;
    use rrl_types::config::SafetyConfig;
    use rrl_types::{CommandMode, JointVec};

    fn control_loop() -> (ControlLoop<MockHardware>, Arc<CommandSlot>) {
        let mut hw = MockHardware::new("mock", &["a", "b"]);
        hw.configure().unwrap();
        hw.activate().unwrap();
        let safety: SafetyConfig = ron::from_str("(joints: [(name: \"a\", position: Some((min: -1.0, max: 1.0)), velocity: Some(1.0))])").unwrap();
        let gate = Gate::build(&safety, &["a".into(), "b".into()], 100.0).unwrap();
        let slot = CommandSlot::new();
        (ControlLoop::new(hw, gate, slot.clone()), slot)
    }

    fn command(t: u64, values: &[f64]) -> JointCommand {
        JointCommand { stamp: Timestamp(t), mode: CommandMode::Position, values: JointVec::from_slice(values).unwrap() }
    }

    #[test]
    fn holds_until_the_first_command_then_follows_it_through_the_gate() {
        let (mut control, slot) = control_loop();
        let tick = 10_000_000;
        assert_eq!(control.tick(Timestamp(tick)).unwrap(), Verdict::Held(HoldReason::NoCommand));
        slot.offer(command(2 * tick, &[0.005, 0.3]));
        assert_eq!(control.tick(Timestamp(2 * tick)).unwrap(), Verdict::Pass);
        assert_eq!(control.sent().values.as_slice(), &[0.005, 0.3]);
        // Joint a may move at most 1 rad/s: 0.01 rad per 10 ms tick.
        slot.offer(command(3 * tick, &[0.5, 0.3]));
        assert!(matches!(control.tick(Timestamp(3 * tick)).unwrap(), Verdict::Clipped(_)));
        assert!((control.sent().values[0] - 0.015).abs() < 1e-12, "{}", control.sent().values[0]);
        assert_eq!(control.counts(), VerdictCounts { passed: 1, clipped: 1, held: 1, reflexes: 0 });
    }

    #[test]
    fn the_newest_command_wins_and_an_old_one_goes_stale() {
        let (mut control, slot) = control_loop();
        let tick = 10_000_000;
        slot.offer(command(tick, &[0.001, 0.0]));
        slot.offer(command(tick, &[0.002, 0.0]));
        control.tick(Timestamp(tick)).unwrap();
        assert_eq!(control.sent().values[0], 0.002);
        // No new command: the last one ages past the 50 ms timeout and the arm holds.
        let mut verdicts = Vec::new();
        for k in 2..10 {
            verdicts.push(control.tick(Timestamp(k * tick)).unwrap());
        }
        assert!(verdicts.iter().take(4).all(|v| *v == Verdict::Pass), "{verdicts:?}");
        assert!(verdicts.iter().skip(5).all(|v| *v == Verdict::Held(HoldReason::StaleCommand)), "{verdicts:?}");
    }
}
