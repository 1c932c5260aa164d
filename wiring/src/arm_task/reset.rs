//! A real-arm task's scripted reset: the launch file's `task.reset` moves
//! in order (lift, tool points, gripper, home with noise, wait, the human
//! reset window), each
//! through the gate on the control thread, each with the practice
//! section's reset timeout. An arm that stops publishing pauses a move
//! (the gate holds it meanwhile), and the pause does not count against
//! the timeout.

use std::time::{Duration, Instant};

use rrl_types::config::ResetMove;

use super::{distance, ArmTask, ArmTaskError};

/// The straight tool line of a move: how far ahead its waypoint lies.
const WAYPOINT_AHEAD_M: f64 = 0.03;
/// A tool move is done this near its point.
const TOOL_TOLERANCE_M: f64 = 0.01;
/// Home's tool line hands over to the joint-space move this near.
const HOME_TOOL_TOLERANCE_M: f64 = 0.02;
/// How far inside the box's walls a reset first takes the tool.
const WALL_CLEARANCE_M: f64 = 0.03;
/// A gripper move is done once its closure changed less than this over
/// `GRIPPER_SETTLE` (it may stop short on an object).
const GRIPPER_STILL: f64 = 0.005;
const GRIPPER_SETTLE: Duration = Duration::from_millis(200);

/// The next waypoint of a straight tool line from `tool` to `end`
/// (`to_go` away): `WAYPOINT_AHEAD_M` along it, or `end` when nearer.
fn waypoint_toward(tool: [f64; 3], end: [f64; 3], to_go: f64) -> [f64; 3] {
    let ahead = (WAYPOINT_AHEAD_M / to_go).min(1.0);
    std::array::from_fn(|k| tool[k] + ahead * (end[k] - tool[k]))
}

impl ArmTask {
    /// ", the last <verdict>, its forwarded command's tool at …" when the
    /// gate intervened.
    fn last_intervention_note(&mut self, interventions: u64) -> String {
        self.take_intervention();
        match &self.newest_intervention {
            Some((verdict, sent)) if interventions > 0 && self.workspace.is_some() => format!(", the last {}, its forwarded command's tool at {:.3?}", verdict, self.tool(sent.as_slice())),
            Some((verdict, _)) if interventions > 0 => format!(", the last {verdict}"),
            _ => String::new(),
        }
    }

    fn interventions_since(&mut self, before: u64) -> String {
        let interventions = self.link.protective().saturating_sub(before);
        format!("the safety gate intervened on {interventions} ticks{}", self.last_intervention_note(interventions))
    }

    /// A tool pressed against the box's walls (practice may leave it there)
    /// first moves a few centimetres inside, the point only: from the wall
    /// itself the gate refuses any step whose first millimetres point out,
    /// and a held orientation can make every step do so. Best effort: a
    /// move that cannot leave the wall is left to the reset's own moves.
    pub(super) fn leave_the_walls(&mut self) -> Result<(), ArmTaskError> {
        let Some(workspace) = self.workspace.as_ref() else { return Ok(()) };
        let tool = self.measured_tool();
        let inside: [f64; 3] = std::array::from_fn(|k| {
            let (lo, hi) = (workspace.min[k] + WALL_CLEARANCE_M, workspace.max[k] - WALL_CLEARANCE_M);
            if lo < hi { tool[k].clamp(lo, hi) } else { 0.5 * (workspace.min[k] + workspace.max[k]) }
        });
        if distance(&inside, &tool) < TOOL_TOLERANCE_M {
            return Ok(());
        }
        let mut started = Instant::now();
        self.drop_stale_intervention();
        while started.elapsed() < self.reset_timeout / 4 {
            let tool = self.measured_tool();
            let to_go = distance(&inside, &tool);
            if to_go < TOOL_TOLERANCE_M {
                break;
            }
            let waypoint = waypoint_toward(tool, inside, to_go);
            self.next_reset_state(&mut started)?;
            self.track_carefully(waypoint, None);
        }
        Ok(())
    }

    /// Waits for the arm's first state; with no home configured, home is
    /// where the arm stands then.
    pub(super) fn wait_for_first_state(&mut self) -> Result<(), ArmTaskError> {
        let waited = Instant::now();
        self.ticks.reanchor();
        while self.state.position.len() != self.joints() {
            if waited.elapsed() > self.reset_timeout {
                return Err(ArmTaskError::NoState(self.reset_timeout.as_secs_f64()));
            }
            self.next_state()?;
        }
        if self.home.len() != self.joints() {
            self.home = self.state.position.as_slice().to_vec();
        }
        if let Some(g) = self.gripper {
            self.gripper_target = g.closure(self.state.position[g.index]).clamp(0.0, 1.0);
        }
        // Commands continue from where the arm is, not from where it was sent.
        let n = self.joints();
        self.command[..n].copy_from_slice(self.state.position.as_slice());
        self.restart_steps();
        Ok(())
    }

    pub(super) fn run_reset_move(&mut self, step: &ResetMove) -> Result<(), ArmTaskError> {
        self.ticks.reanchor();
        match *step {
            ResetMove::Home => self.go_home(),
            ResetMove::Lift(dz) => {
                let tool = self.measured_tool();
                self.move_tool([tool[0], tool[1], tool[2] + dz], &format!("Lift({dz})"))
            }
            ResetMove::Tool((x, y, z)) => self.move_tool([x, y, z], &format!("Tool(({x}, {y}, {z}))")),
            ResetMove::Gripper(closure) => self.move_gripper(closure),
            ResetMove::WaitForHuman(seconds) => {
                let window = self.reset_window.take().expect("started with the task when its reset has a window");
                let mut started = Instant::now();
                self.live.wait_for(rrl_types::Waiting::SceneReset);
                let outcome = window.wait(Duration::from_secs_f64(seconds), || {
                    self.offer_command();
                    self.next_reset_state(&mut started)
                });
                self.live.came(rrl_types::Waiting::SceneReset);
                self.reset_window = Some(window);
                outcome?.map_err(|why| ArmTaskError::MoveTimeout { what: format!("WaitForHuman({seconds})"), seconds, detail: why })
            }
            ResetMove::Wait(seconds) => {
                let until = Instant::now() + Duration::from_secs_f64(seconds);
                while Instant::now() < until {
                    self.offer_command();
                    self.next_state()?;
                }
                Ok(())
            }
        }
    }

    /// `next_state` for a reset: a silent arm pauses the move (see the module doc).
    fn next_reset_state(&mut self, started: &mut Instant) -> Result<(), ArmTaskError> {
        self.next_state()?;
        if self.state_age() > self.state_timeout {
            let paused = Instant::now();
            self.wait_while_silent()?;
            *started += paused.elapsed();
            self.ticks.reanchor();
        }
        Ok(())
    }

    /// The tool in a straight line to `point` (kept inside the box), its
    /// orientation held when the task's actions control it (an arm with
    /// too few joints for that moves the point only): a waypoint a few
    /// centimetres ahead keeps the linearised steps on the line.
    fn move_tool(&mut self, point: [f64; 3], what: &str) -> Result<(), ArmTaskError> {
        let end = self.inside_box(point);
        let mut rotation = self.actions.controls_orientation().then(|| self.tool_pose(self.state.position.as_slice()).rotation.to_rotation_matrix());
        let mut started = Instant::now();
        let interventions_before = self.link.protective();
        self.drop_stale_intervention();
        loop {
            let tool = self.measured_tool();
            let to_go = distance(&end, &tool);
            if to_go < TOOL_TOLERANCE_M {
                return Ok(());
            }
            if rotation.is_some() && started.elapsed() > self.reset_timeout / 2 {
                // Holding the orientation may be what keeps the point out of
                // reach (a pose pressed against a wall or a joint limit): the
                // point matters more, and the next move or home restores it.
                tracing::warn!(what, tool = ?tool, "the reset move frees the tool's orientation to reach its point");
                rotation = None;
            }
            if started.elapsed() > self.reset_timeout {
                let gate = self.interventions_since(interventions_before);
                return Err(ArmTaskError::MoveTimeout { what: what.into(), seconds: self.reset_timeout.as_secs_f64(), detail: format!("tool at {tool:.3?}, {to_go:.3} m from {end:.3?}; {gate}") });
            }
            let waypoint = waypoint_toward(tool, end, to_go);
            self.next_reset_state(&mut started)?;
            self.track_carefully(waypoint, rotation);
        }
    }

    /// The gripper to `closure`, the arm held where it is.
    fn move_gripper(&mut self, closure: f64) -> Result<(), ArmTaskError> {
        let Some(g) = self.gripper else { return Err(ArmTaskError::Unfit("task.reset: a Gripper(..) move needs task.gripper".into())) };
        self.gripper_target = closure;
        let mut started = Instant::now();
        let (mut last, mut still_since) = (f64::NAN, Instant::now());
        loop {
            self.offer_command();
            self.next_reset_state(&mut started)?;
            let now = g.closure(self.state.position[g.index]);
            if (now - last).abs() >= GRIPPER_STILL || last.is_nan() {
                (last, still_since) = (now, Instant::now());
            } else if still_since.elapsed() >= GRIPPER_SETTLE && started.elapsed() >= GRIPPER_SETTLE {
                return Ok(());
            }
            if started.elapsed() > self.reset_timeout {
                return Err(ArmTaskError::MoveTimeout { what: format!("Gripper({closure})"), seconds: self.reset_timeout.as_secs_f64(), detail: format!("closure {now:.3}, still moving") });
            }
        }
    }

    /// Drives the arm to its home pose (plus noise) through the gate.
    fn go_home(&mut self) -> Result<(), ArmTaskError> {
        let n = self.joints();
        let noise = self.home_noise;
        let pose: Vec<f64> = (0..n)
            .map(|j| {
                let (lo, hi) = self.sample_range(j);
                (self.home[j] + self.rng.uniform(-noise, noise)).clamp(lo, hi)
            })
            .collect();
        let mut started = Instant::now();
        let interventions_before = self.link.protective();
        // First the tool goes home in a straight line, through the box's
        // inside: a joint-space move from a pose near a wall can swing the
        // tool out of the box, which the gate refuses from the first tick.
        if self.workspace.is_some() {
            let home_tool = self.inside_box(self.tool(&pose));
            self.drop_stale_intervention();
            loop {
                let tool = self.measured_tool();
                let to_go = distance(&home_tool, &tool);
                if to_go < HOME_TOOL_TOLERANCE_M || started.elapsed() > self.reset_timeout / 2 {
                    break;
                }
                let waypoint = waypoint_toward(tool, home_tool, to_go);
                self.next_reset_state(&mut started)?;
                self.track_carefully(waypoint, None);
            }
        }
        // Then the arm's joints, from there to the home pose. The gripper
        // keeps its target: opening and closing are `Gripper(..)` moves.
        self.command[..n].copy_from_slice(&pose);
        self.restart_steps();
        loop {
            self.offer_command();
            self.next_reset_state(&mut started)?;
            let worst = self.arm.iter().map(|&j| (j, (self.state.position[j] - pose[j]).abs())).max_by(|a, b| a.1.total_cmp(&b.1)).expect("at least one arm joint");
            if worst.1 < 0.02 {
                break;
            }
            if started.elapsed() > self.reset_timeout {
                let j = worst.0;
                let tools = self.workspace.as_ref().map(|_| (self.measured_tool(), self.tool(&self.command[..n])));
                let (tool, asked) = tools.unwrap_or(([f64::NAN; 3], [f64::NAN; 3]));
                let interventions = self.link.protective().saturating_sub(interventions_before);
                let last_intervention = self.last_intervention_note(interventions);
                return Err(ArmTaskError::ResetTimeout { seconds: self.reset_timeout.as_secs_f64(), joint: self.joint_names[j].clone(), at: self.state.position[j], home: pose[j], tool, asked, interventions, last_intervention });
            }
        }
        // Commands continue from where the arm is, not from where it was sent.
        for &j in &self.arm {
            self.command[j] = self.state.position[j];
        }
        self.restart_steps();
        Ok(())
    }
}
