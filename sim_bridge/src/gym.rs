//! Gymnasium v5 MuJoCo tasks in Rust: the same model files (loaded from the
//! installed gymnasium package), frame skips, observations, rewards,
//! termination and reset noise as Gymnasium v5 defines them, so that results
//! compare one to one with the Python ecosystem.

use std::sync::Arc;

use mujoco_rs::prelude::{MjData, MjModel};

use crate::assets::{load_model, AssetPackage, SimError};
use rrl_types::{Environment, Step};
use rrl_types::rng::Rng;

/// The Gymnasium v5 tasks we reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GymTask {
    InvertedPendulum,
    InvertedDoublePendulum,
    HalfCheetah,
    Hopper,
    Walker2d,
    Ant,
}

impl GymTask {
    pub const ALL: [GymTask; 6] = [
        GymTask::InvertedPendulum,
        GymTask::InvertedDoublePendulum,
        GymTask::HalfCheetah,
        GymTask::Hopper,
        GymTask::Walker2d,
        GymTask::Ant,
    ];

    /// Gymnasium's id, e.g. "HalfCheetah-v5".
    pub fn gym_id(self) -> &'static str {
        match self {
            GymTask::InvertedPendulum => "InvertedPendulum-v5",
            GymTask::InvertedDoublePendulum => "InvertedDoublePendulum-v5",
            GymTask::HalfCheetah => "HalfCheetah-v5",
            GymTask::Hopper => "Hopper-v5",
            GymTask::Walker2d => "Walker2d-v5",
            GymTask::Ant => "Ant-v5",
        }
    }

    /// Parses a Gymnasium id (with or without "-v5") or our name.
    pub fn from_name(name: &str) -> Option<GymTask> {
        let base = name.strip_suffix("-v5").unwrap_or(name);
        GymTask::ALL.into_iter().find(|t| t.gym_id().trim_end_matches("-v5").eq_ignore_ascii_case(base))
    }

    fn model_file(self) -> &'static str {
        match self {
            GymTask::InvertedPendulum => "inverted_pendulum.xml",
            GymTask::InvertedDoublePendulum => "inverted_double_pendulum.xml",
            GymTask::HalfCheetah => "half_cheetah.xml",
            GymTask::Hopper => "hopper.xml",
            GymTask::Walker2d => "walker2d_v5.xml",
            GymTask::Ant => "ant.xml",
        }
    }

    fn frame_skip(self) -> usize {
        match self {
            GymTask::InvertedPendulum => 2,
            GymTask::Hopper | GymTask::Walker2d => 4,
            GymTask::InvertedDoublePendulum | GymTask::HalfCheetah | GymTask::Ant => 5,
        }
    }

    fn reset_noise_scale(self) -> f64 {
        match self {
            GymTask::InvertedPendulum => 0.01,
            GymTask::Hopper | GymTask::Walker2d => 5e-3,
            GymTask::InvertedDoublePendulum | GymTask::HalfCheetah | GymTask::Ant => 0.1,
        }
    }

    /// Whether reset noise on velocities is Gaussian (else uniform).
    fn gaussian_velocity_noise(self) -> bool {
        matches!(self, GymTask::InvertedDoublePendulum | GymTask::HalfCheetah | GymTask::Ant)
    }

    /// Gymnasium's TimeLimit for every v5 MuJoCo task here.
    pub fn max_episode_steps(self) -> u32 {
        1000
    }
}

/// One copy of a Gymnasium v5 task.
pub struct GymEnv {
    task: GymTask,
    data: MjData<Arc<MjModel>>,
    init_qpos: Vec<f64>,
    init_qvel: Vec<f64>,
    action_low: Vec<f64>,
    action_high: Vec<f64>,
    dt: f64,
    observation: Vec<f64>,
    rng: Rng,
    elapsed_steps: u32,
}

impl GymEnv {
    pub fn new(task: GymTask) -> Result<GymEnv, SimError> {
        let path = AssetPackage::Gymnasium.path(task.model_file())?;
        let model = Arc::new(load_model(&path)?);
        let (action_low, action_high): (Vec<f64>, Vec<f64>) = model
            .actuator_ctrlrange()
            .iter()
            .zip(model.actuator_ctrllimited())
            .map(|(range, &limited)| if limited { (range[0], range[1]) } else { (f64::NEG_INFINITY, f64::INFINITY) })
            .unzip();
        let dt = model.ffi().opt.timestep * task.frame_skip() as f64;
        let init_qpos = model.qpos0().to_vec();
        let data = MjData::new(model.clone());
        let init_qvel = vec![0.0; data.qvel().len()];
        let mut env = GymEnv {
            task,
            data,
            init_qpos,
            init_qvel,
            action_low,
            action_high,
            dt,
            observation: Vec::new(),
            rng: Rng::seed(0),
            elapsed_steps: 0,
        };
        env.observation = vec![0.0; env.observation_len()];
        env.write_observation();
        Ok(env)
    }

    pub fn task(&self) -> GymTask {
        self.task
    }

    /// Seconds of simulated time per `step`.
    pub fn dt(&self) -> f64 {
        self.dt
    }

    pub fn qpos(&self) -> &[f64] {
        self.data.qpos()
    }

    pub fn qvel(&self) -> &[f64] {
        self.data.qvel()
    }

    /// Sets positions and velocities and recomputes derived quantities, as
    /// Gymnasium's `set_state` does.
    pub fn set_state(&mut self, qpos: &[f64], qvel: &[f64]) -> Result<(), SimError> {
        check_len("qpos", qpos.len(), self.data.qpos().len())?;
        check_len("qvel", qvel.len(), self.data.qvel().len())?;
        self.data.qpos_mut().copy_from_slice(qpos);
        self.data.qvel_mut().copy_from_slice(qvel);
        self.data.forward();
        self.write_observation();
        Ok(())
    }

    fn observation_len(&self) -> usize {
        let nq = self.data.qpos().len();
        let nv = self.data.qvel().len();
        match self.task {
            GymTask::InvertedPendulum => nq + nv,
            GymTask::InvertedDoublePendulum => 1 + 2 * (nq - 1) + nv + 1,
            GymTask::HalfCheetah | GymTask::Hopper | GymTask::Walker2d => nq - 1 + nv,
            GymTask::Ant => nq - 2 + nv + 6 * (self.data.cfrc_ext().len() - 1),
        }
    }

    fn write_observation(&mut self) {
        let qpos = self.data.qpos();
        let qvel = self.data.qvel();
        let obs = &mut self.observation;
        obs.clear();
        match self.task {
            GymTask::InvertedPendulum => {
                obs.extend_from_slice(qpos);
                obs.extend_from_slice(qvel);
            }
            GymTask::InvertedDoublePendulum => {
                obs.push(qpos[0]);
                obs.extend(qpos[1..].iter().map(|q| q.sin()));
                obs.extend(qpos[1..].iter().map(|q| q.cos()));
                obs.extend(qvel.iter().map(|v| v.clamp(-10.0, 10.0)));
                obs.push(self.data.qfrc_constraint()[0].clamp(-10.0, 10.0));
            }
            GymTask::HalfCheetah => {
                obs.extend_from_slice(&qpos[1..]);
                obs.extend_from_slice(qvel);
            }
            GymTask::Hopper | GymTask::Walker2d => {
                obs.extend_from_slice(&qpos[1..]);
                obs.extend(qvel.iter().map(|v| v.clamp(-10.0, 10.0)));
            }
            GymTask::Ant => {
                obs.extend_from_slice(&qpos[2..]);
                obs.extend_from_slice(qvel);
                for body in &self.data.cfrc_ext()[1..] {
                    obs.extend(body.iter().map(|f| f.clamp(-1.0, 1.0)));
                }
            }
        }
    }

    fn is_healthy(&self) -> bool {
        let qpos = self.data.qpos();
        let qvel = self.data.qvel();
        match self.task {
            GymTask::Hopper => {
                let (z, angle) = (qpos[1], qpos[2]);
                let state_ok = qpos[2..].iter().chain(qvel.iter()).all(|&s| -100.0 < s && s < 100.0);
                state_ok && 0.7 < z && z < f64::INFINITY && -0.2 < angle && angle < 0.2
            }
            GymTask::Walker2d => {
                let (z, angle) = (qpos[1], qpos[2]);
                0.8 < z && z < 2.0 && -1.0 < angle && angle < 1.0
            }
            GymTask::Ant => {
                let finite = qpos.iter().chain(qvel.iter()).all(|v| v.is_finite());
                finite && (0.2..=1.0).contains(&qpos[2])
            }
            _ => true,
        }
    }

    fn validate_action(&self, action: &[f64]) -> Result<(), SimError> {
        if action.len() != self.action_low.len() {
            return Err(SimError::ActionSize { task: self.task.gym_id(), expected: self.action_low.len(), got: action.len() });
        }
        if let Some(index) = action.iter().position(|a| !a.is_finite()) {
            return Err(SimError::NonFiniteAction { task: self.task.gym_id(), index, value: action[index] });
        }
        Ok(())
    }
}

fn check_len(field: &'static str, got: usize, expected: usize) -> Result<(), SimError> {
    if got == expected {
        Ok(())
    } else {
        Err(SimError::StateSize { field, expected, got })
    }
}

impl Environment for GymEnv {
    type Error = SimError;

    fn observation_size(&self) -> usize {
        self.observation.len()
    }

    fn action_size(&self) -> usize {
        self.action_low.len()
    }

    fn action_low(&self) -> &[f64] {
        &self.action_low
    }

    fn action_high(&self) -> &[f64] {
        &self.action_high
    }

    fn observation(&self) -> &[f64] {
        &self.observation
    }

    fn reset(&mut self, seed: u64) -> &[f64] {
        self.rng = Rng::seed(seed);
        self.reset_next()
    }

    fn reset_next(&mut self) -> &[f64] {
        self.data.reset();
        let s = self.task.reset_noise_scale();
        let qpos: Vec<f64> = self.init_qpos.iter().map(|q| q + self.rng.uniform(-s, s)).collect();
        let gaussian = self.task.gaussian_velocity_noise();
        let qvel: Vec<f64> = self
            .init_qvel
            .iter()
            .map(|v| v + if gaussian { s * self.rng.normal() } else { self.rng.uniform(-s, s) })
            .collect();
        // Sizes come from the model itself; set_state cannot fail here.
        let _ = self.set_state(&qpos, &qvel);
        self.elapsed_steps = 0;
        &self.observation
    }

    fn step(&mut self, action: &[f64]) -> Result<Step, SimError> {
        self.validate_action(action)?;
        let x_before = match self.task {
            GymTask::Ant => self.data.xpos()[1][0],
            _ => self.data.qpos()[0],
        };
        self.data.ctrl_mut().copy_from_slice(action);
        for _ in 0..self.task.frame_skip() {
            self.data.step();
        }
        // Gymnasium computes the force quantities (cfrc_ext) after every
        // step; only Ant's observation and reward read them.
        if self.task == GymTask::Ant {
            self.data.rne_post_constraint();
        }
        self.write_observation();
        self.elapsed_steps += 1;
        let ctrl_sq: f64 = action.iter().map(|a| a * a).sum();
        let (reward, terminated) = match self.task {
            GymTask::InvertedPendulum => {
                let fallen = !self.observation.iter().all(|v| v.is_finite()) || self.observation[1].abs() > 0.2;
                (if fallen { 0.0 } else { 1.0 }, fallen)
            }
            GymTask::InvertedDoublePendulum => {
                let tip = self.data.site_xpos()[0];
                let (x, y) = (tip[0], tip[2]);
                let v = self.data.qvel();
                let terminated = y <= 1.0;
                let dist_penalty = 0.01 * x * x + (y - 2.0) * (y - 2.0);
                let vel_penalty = 1e-3 * v[1] * v[1] + 5e-3 * v[2] * v[2];
                let alive = if terminated { 0.0 } else { 10.0 };
                (alive - dist_penalty - vel_penalty, terminated)
            }
            GymTask::HalfCheetah => {
                let x_velocity = (self.data.qpos()[0] - x_before) / self.dt;
                (x_velocity - 0.1 * ctrl_sq, false)
            }
            GymTask::Hopper | GymTask::Walker2d => {
                let x_velocity = (self.data.qpos()[0] - x_before) / self.dt;
                let healthy = self.is_healthy();
                let survive = if healthy { 1.0 } else { 0.0 };
                (x_velocity + survive - 1e-3 * ctrl_sq, !healthy)
            }
            GymTask::Ant => {
                let x_velocity = (self.data.xpos()[1][0] - x_before) / self.dt;
                let healthy = self.is_healthy();
                let survive = if healthy { 1.0 } else { 0.0 };
                let contact_sq: f64 = self.data.cfrc_ext().iter().flatten().map(|f| f.clamp(-1.0, 1.0).powi(2)).sum();
                (x_velocity + survive - 0.5 * ctrl_sq - 5e-4 * contact_sq, !healthy)
            }
        };
        let truncated = !terminated && self.elapsed_steps >= self.task.max_episode_steps();
        Ok(Step { reward, terminated, truncated })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::BatchedEnv;

    fn rollout(task: GymTask, seed: u64, steps: usize) -> Vec<f64> {
        let mut env = GymEnv::new(task).unwrap();
        let mut out = env.reset(seed).to_vec();
        let mut rng = Rng::seed(seed ^ 0xA5);
        for _ in 0..steps {
            let action: Vec<f64> = env.action_low().iter().zip(env.action_high()).map(|(l, h)| rng.uniform(*l, *h)).collect();
            let step = env.step(&action).unwrap();
            out.extend_from_slice(env.observation());
            out.push(step.reward);
            if step.done() {
                out.extend_from_slice(env.reset_next());
            }
        }
        out
    }

    #[test]
    fn a_seed_fixes_the_whole_rollout() {
        for task in [GymTask::Hopper, GymTask::HalfCheetah] {
            assert_eq!(rollout(task, 5, 300), rollout(task, 5, 300), "{task:?}");
            assert_ne!(rollout(task, 5, 300), rollout(task, 6, 300), "{task:?}");
        }
    }

    #[test]
    fn reset_noise_has_the_configured_scale() {
        let mut env = GymEnv::new(GymTask::HalfCheetah).unwrap();
        let init = env.init_qpos.clone();
        let mut max_dev: f64 = 0.0;
        for seed in 0..20 {
            env.reset(seed);
            for (q, q0) in env.qpos().iter().zip(&init) {
                max_dev = max_dev.max((q - q0).abs());
            }
        }
        assert!(max_dev <= 0.1 && max_dev > 0.05, "uniform noise of scale 0.1, max deviation {max_dev}");
    }

    #[test]
    fn wrong_action_size_and_nan_are_refused_naming_the_task() {
        let mut env = GymEnv::new(GymTask::Hopper).unwrap();
        env.reset(0);
        let err = env.step(&[0.0; 2]).unwrap_err().to_string();
        assert!(err.contains("Hopper-v5") && err.contains("2 values") && err.contains("takes 3"), "{err}");
        let err = env.step(&[0.0, f64::NAN, 0.0]).unwrap_err().to_string();
        assert!(err.contains("action[1]"), "{err}");
    }

    #[test]
    fn episodes_are_truncated_at_the_time_limit() {
        let mut env = GymEnv::new(GymTask::HalfCheetah).unwrap();
        env.reset(0);
        let zero = vec![0.0; env.action_size()];
        for t in 1..=1000 {
            let step = env.step(&zero).unwrap();
            assert_eq!(step.truncated, t == 1000, "step {t}");
            assert!(!step.terminated);
        }
    }

    #[test]
    fn batched_stepping_on_threads_equals_one_copy_at_a_time() {
        let make = || (0..4).map(|_| GymEnv::new(GymTask::Hopper).unwrap()).collect::<Vec<_>>();
        let mut serial = BatchedEnv::new(make(), 100);
        let mut threaded = BatchedEnv::new(make(), 100);
        let mut rng = Rng::seed(9);
        let (mut s1, mut o1, mut s2, mut o2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..200 {
            let actions: Vec<f64> = (0..4 * 3).map(|_| rng.uniform(-1.0, 1.0)).collect();
            serial.step(&actions, 1, &mut s1, &mut o1).unwrap();
            threaded.step(&actions, 2, &mut s2, &mut o2).unwrap();
            assert_eq!(s1, s2);
            assert_eq!(o1, o2);
        }
        assert_ne!(serial.copy(0).qpos(), serial.copy(1).qpos(), "copies are seeded differently");
    }
}
