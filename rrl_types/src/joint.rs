//! Joint-space values of the control loop, fixed-size and `Copy` so that
//! reading a state, gating a command and writing it never allocate.

use crate::clock::Timestamp;

/// The most joints one robot may have. 16 covers a 7-DoF arm with a
/// multi-joint gripper, bimanual 6-DoF arms with grippers, and cars.
pub const MAX_JOINTS: usize = 16;

/// Up to `MAX_JOINTS` values, one per joint, stored inline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JointVec {
    len: u8,
    values: [f64; MAX_JOINTS],
}

impl Default for JointVec {
    fn default() -> Self {
        JointVec::zeros(0)
    }
}

impl JointVec {
    /// `len` zeros. Panics when `len > MAX_JOINTS`: robot configurations are
    /// validated against that bound before any loop starts.
    pub fn zeros(len: usize) -> JointVec {
        assert!(len <= MAX_JOINTS, "{len} joints exceed MAX_JOINTS = {MAX_JOINTS}");
        JointVec { len: len as u8, values: [0.0; MAX_JOINTS] }
    }

    /// Copies `values`; `None` when there are more than `MAX_JOINTS`.
    pub fn from_slice(values: &[f64]) -> Option<JointVec> {
        if values.len() > MAX_JOINTS {
            return None;
        }
        let mut v = JointVec::zeros(values.len());
        v.values[..values.len()].copy_from_slice(values);
        Some(v)
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[f64] {
        &self.values[..self.len as usize]
    }

    pub fn as_mut_slice(&mut self) -> &mut [f64] {
        &mut self.values[..self.len as usize]
    }

    /// True when every value is finite (no NaN, no infinity).
    pub fn all_finite(&self) -> bool {
        self.as_slice().iter().all(|v| v.is_finite())
    }
}

impl std::ops::Index<usize> for JointVec {
    type Output = f64;
    fn index(&self, i: usize) -> &f64 {
        &self.as_slice()[i]
    }
}

impl std::ops::IndexMut<usize> for JointVec {
    fn index_mut(&mut self, i: usize) -> &mut f64 {
        &mut self.as_mut_slice()[i]
    }
}

/// What the hardware measured at `stamp`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct JointState {
    pub stamp: Timestamp,
    pub position: JointVec,
    pub velocity: JointVec,
    pub effort: JointVec,
    /// External wrench on the end effector (force x, y, z in N, then torque
    /// in Nm), when the robot measures or estimates one.
    pub wrench: Option<[f64; 6]>,
}

impl JointState {
    pub fn zeros(joints: usize) -> JointState {
        JointState {
            stamp: Timestamp::ZERO,
            position: JointVec::zeros(joints),
            velocity: JointVec::zeros(joints),
            effort: JointVec::zeros(joints),
            wrench: None,
        }
    }
}

/// Which command interface a command addresses (ros2_control's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum CommandMode {
    #[default]
    Position,
    Velocity,
    Effort,
}

/// A command for every joint, produced at `stamp` by some action source.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct JointCommand {
    pub stamp: Timestamp,
    pub mode: CommandMode,
    pub values: JointVec,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_slice_round_trips_and_rejects_too_many() {
        let v = JointVec::from_slice(&[1.0, -2.0, 3.5]).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v.as_slice(), &[1.0, -2.0, 3.5]);
        assert!(JointVec::from_slice(&[0.0; MAX_JOINTS + 1]).is_none());
    }

    #[test]
    fn finite_check_sees_nan_and_inf() {
        let mut v = JointVec::zeros(4);
        assert!(v.all_finite());
        v[2] = f64::NAN;
        assert!(!v.all_finite());
        v[2] = f64::INFINITY;
        assert!(!v.all_finite());
    }
}
