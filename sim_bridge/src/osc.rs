//! Operational-space control of the simulated Panda: the fingertips are
//! driven like a critically damped mass-spring toward a Cartesian pose
//! through the arm's task-space inertia (Khatib's formulation), with a
//! joint-space pull toward a rest pose in the null space of the task.
//!
//! τ = Jᵀ Λ (Kp·e − Kd·ẋ) + (I − Jᵀ J̄ᵀ)(kₙ·(q_rest − q) − dₙ·q̇),
//! Λ = (J M⁻¹ Jᵀ)⁻¹, J̄ = M⁻¹ Jᵀ Λ. The gravity and Coriolis terms are not
//! part of τ: like a Franka in torque mode, the robot adds them itself
//! (`PandaSim::step_with_torques`). The default gains are gym-hil's, so the
//! simulated arm behaves like the arm of the task it reproduces.

use nalgebra::{Matrix3, Rotation3, SMatrix, SVector, Vector3};

use crate::arm::PandaSim;

/// Gains of the operational-space controller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OscGains {
    /// Position stiffness per axis, 1/s² (task-space acceleration per metre).
    pub position: [f64; 3],
    /// Orientation stiffness per axis, 1/s².
    pub orientation: [f64; 3],
    /// Damping ratio of every spring (1: critically damped).
    pub damping_ratio: f64,
    /// Stiffness of the null-space pull toward the rest pose.
    pub nullspace_stiffness: f64,
}

impl Default for OscGains {
    fn default() -> Self {
        OscGains { position: [200.0; 3], orientation: [200.0; 3], damping_ratio: 1.0, nullspace_stiffness: 0.5 }
    }
}

/// Where the controller pulls the fingertips (the `pinch` site) and the arm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OscTarget {
    pub position: [f64; 3],
    /// Desired orientation of the pinch site in the world frame.
    pub orientation: Matrix3<f64>,
    /// Joint pose the null space is pulled toward.
    pub rest: [f64; 7],
}

/// Determinant of J M⁻¹ Jᵀ below which it counts as singular and the
/// task inertia comes from a truncated pseudo-inverse instead.
const SINGULAR_DETERMINANT: f64 = 1e-2;
/// Singular values below this share of the largest are dropped then.
const PSEUDO_INVERSE_RCOND: f64 = 1e-2;

/// Joint torques (without gravity and Coriolis compensation) that drive the
/// Panda in `sim` toward `target`; `None` only when the arm's mass matrix is
/// not invertible, which a physical model never produces.
pub fn osc_torques(sim: &mut PandaSim, target: &OscTarget, gains: &OscGains) -> Option<[f64; 7]> {
    let jacobian = sim.pinch_jacobian();
    let q = SVector::<f64, 7>::from(sim.joint_positions());
    let qd = SVector::<f64, 7>::from(sim.joint_velocities());
    let twist = jacobian * qd;
    let damping = |k: f64| gains.damping_ratio * 2.0 * k.sqrt();

    let position = Vector3::from(sim.pinch_position());
    let position_error = Vector3::from(target.position) - position;
    // The rotation that takes the desired orientation to the current one,
    // as an axis-angle vector in the world frame: the spring turns it back.
    let current = Matrix3::from_row_slice(&sim.pinch_orientation());
    let rotation_error = Rotation3::from_matrix_unchecked(current * target.orientation.transpose()).scaled_axis();
    let mut acceleration = SVector::<f64, 6>::zeros();
    for k in 0..3 {
        acceleration[k] = gains.position[k] * position_error[k] - damping(gains.position[k]) * twist[k];
        acceleration[k + 3] = -gains.orientation[k] * rotation_error[k] - damping(gains.orientation[k]) * twist[k + 3];
    }

    let mass = sim.arm_mass_matrix();
    let mass_inverse = mass.try_inverse()?;
    let task_inertia_inverse = jacobian * mass_inverse * jacobian.transpose();
    let task_inertia = if task_inertia_inverse.determinant().abs() >= SINGULAR_DETERMINANT {
        task_inertia_inverse.try_inverse()?
    } else {
        let svd = task_inertia_inverse.svd(true, true);
        let cutoff = PSEUDO_INVERSE_RCOND * svd.singular_values.max();
        svd.pseudo_inverse(cutoff).ok()?
    };
    let mut torque = jacobian.transpose() * task_inertia * acceleration;

    let kn = gains.nullspace_stiffness;
    let rest = SVector::<f64, 7>::from(target.rest);
    let joint_acceleration = (rest - q) * kn - qd * damping(kn);
    let dynamically_consistent_inverse = mass_inverse * jacobian.transpose() * task_inertia;
    let null_space = SMatrix::<f64, 7, 7>::identity() - jacobian.transpose() * dynamically_consistent_inverse.transpose();
    torque += null_space * joint_acceleration;
    Some(torque.into())
}
