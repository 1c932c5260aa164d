//! One damped least-squares inverse-kinematics step, shared by the
//! simulated Panda's Cartesian controller and the real-arm tasks, so the
//! simulation that stands in for a real arm moves the way the real-arm
//! path does.
//!
//! Its output is a joint command for the gate, never a write to hardware:
//! the gate still limits whatever it proposes. Its matrices have a fixed
//! size (six task rows, `MAX_JOINTS` joint columns, unused ones zero), so a
//! step allocates nothing: the real-arm task runs one per control tick.

use nalgebra::{Rotation3, SMatrix, SVector, UnitQuaternion, Vector3, Vector6};
use rrl_types::MAX_JOINTS;

use crate::kinematics::KinematicChain;

/// λ of J Jᵀ + λ² I: keeps steps bounded near singular poses.
pub const DAMPING: f64 = 1e-2;
/// Largest change of one joint per solution, rad: a far target is reached
/// over several steps rather than by one leap.
pub const MAX_SOLUTION_STEP: f64 = 0.2;
/// The share of the way from the current command to the solution taken
/// per step: a continuous stream a real arm (and the gate's acceleration
/// and jerk limits) can follow, where jumping straight to the solution from
/// the measured pose would jitter with it.
pub const FOLLOW_SHARE: f64 = 0.3;

/// A tool Jacobian: translation rows 0..3, base-frame angular rows 3..6
/// (zero where only the position is tracked), one column per joint in the
/// order given (columns past the last joint are zero). Zero rows and
/// columns leave the damped step of the others exactly as it would be
/// without them.
pub type ToolJacobian = SMatrix<f64, 6, MAX_JOINTS>;
/// One value per Jacobian column (joint changes, a null-space pull).
pub type JointColumns = SVector<f64, MAX_JOINTS>;

/// The joint change toward the task-space `error` for `jacobian`:
/// Jᵀ (J Jᵀ + λ² I)⁻¹ e, plus (I − J⁺ J) `null_pull` when given (a
/// secondary goal, e.g. toward a rest pose, that does not disturb the
/// task). `None` when the damped matrix cannot be inverted. The pull's
/// padded entries (past the Jacobian's joints) must be zero: they pass
/// through unchanged.
pub fn dls_step(jacobian: &ToolJacobian, error: &Vector6<f64>, null_pull: Option<&JointColumns>) -> Option<JointColumns> {
    let jjt = jacobian * jacobian.transpose() + SMatrix::<f64, 6, 6>::identity() * (DAMPING * DAMPING);
    let pseudo = jacobian.transpose() * jjt.try_inverse()?;
    let mut dq = pseudo * error;
    if let Some(pull) = null_pull {
        dq += pull - pseudo * (jacobian * pull);
    }
    Some(dq)
}

/// `dls_step`, then solved again without the joints `held` names for the
/// step found (by column and that step's change): a joint at a position
/// limit that the step pushes further will not move (the gate stops it),
/// and the other joints must not make up for a motion that will not happen
/// (pressed beyond its reach, an arm would fold away, the elbow held
/// straight at its limit and the shoulder and wrist bending for it).
pub fn dls_step_with_held(jacobian: &ToolJacobian, error: &Vector6<f64>, null_pull: Option<&JointColumns>, held: impl Fn(usize, f64) -> bool) -> Option<JointColumns> {
    let dq = dls_step(jacobian, error, null_pull)?;
    let mut without = *jacobian;
    let mut pull = null_pull.copied();
    let mut any = false;
    for c in 0..MAX_JOINTS {
        if held(c, dq[c]) {
            without.column_mut(c).fill(0.0);
            if let Some(pull) = pull.as_mut() {
                pull[c] = 0.0;
            }
            any = true;
        }
    }
    if any {
        dls_step(&without, error, pull.as_ref())
    } else {
        Some(dq)
    }
}

/// Moves a joint `command` a share of the way toward the solution `q + dq`
/// (with `dq` bounded by `MAX_SOLUTION_STEP`), by at most `max_step`.
pub fn follow(q: f64, dq: f64, command: &mut f64, max_step: f64) {
    let solution = q + dq.clamp(-MAX_SOLUTION_STEP, MAX_SOLUTION_STEP);
    *command += (FOLLOW_SHARE * (solution - *command)).clamp(-max_step, max_step);
}

/// The tool's Jacobian of `chain` at `q` for the joints `columns` (indices
/// into `q`, at most `MAX_JOINTS`; a gripper joint is left out): the
/// translation rows, and with `rotation` the angular rows. By forward
/// differences: exact enough for a damped step, and it needs nothing but
/// the forward kinematics the gate already has.
pub fn tool_jacobian(chain: &KinematicChain, q: &[f64], columns: &[usize], rotation: bool) -> ToolJacobian {
    const H: f64 = 1e-6;
    let pose = chain.tool_pose_with(|i| q[i]);
    let mut jacobian = ToolJacobian::zeros();
    for (c, &j) in columns.iter().enumerate() {
        let shifted = |i: usize| if i == j { q[i] + H } else { q[i] };
        let moved = chain.tool_pose_with(shifted);
        let dp = (moved.translation.vector - pose.translation.vector) / H;
        jacobian.fixed_view_mut::<3, 1>(0, c).copy_from(&dp);
        if rotation {
            let dr = orientation_error(&moved.rotation.to_rotation_matrix(), &pose.rotation.to_rotation_matrix()) / H;
            jacobian.fixed_view_mut::<3, 1>(3, c).copy_from(&dr);
        }
    }
    jacobian
}

/// The rotation taking `current` to `target`, as a base-frame rotation
/// vector (axis × angle): the angular error a pose step removes.
pub fn orientation_error(target: &Rotation3<f64>, current: &Rotation3<f64>) -> Vector3<f64> {
    // Through a quaternion: a rotation matrix's own angle takes the arc
    // cosine of its trace, which rounding pushes past 1 (NaN) near identity.
    UnitQuaternion::from_rotation_matrix(&(target * current.inverse())).scaled_axis()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{DMatrix, DVector};

    const PANDA_READY: [f64; 7] = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785];
    const ALL_SEVEN: [usize; 7] = [0, 1, 2, 3, 4, 5, 6];

    fn moved_by(q: &[f64], dq: &JointColumns) -> Vec<f64> {
        q.iter().zip(dq.iter()).map(|(a, b)| a + b).collect()
    }

    #[test]
    fn a_step_moves_the_tool_toward_its_target_and_the_null_space_pull_leaves_the_tool_alone() {
        let chain = KinematicChain::panda();
        let q = PANDA_READY.to_vec();
        let tool = chain.tool_position(&q);
        let target = [tool[0] + 0.02, tool[1] - 0.01, tool[2] + 0.01];
        let error = Vector6::new(target[0] - tool[0], target[1] - tool[1], target[2] - tool[2], 0.0, 0.0, 0.0);
        let jacobian = tool_jacobian(&chain, &q, &ALL_SEVEN, false);
        let dq = dls_step(&jacobian, &error, None).unwrap();
        let after = chain.tool_position(&moved_by(&q, &dq));
        let distance = |p: [f64; 3]| (0..3).map(|k| (target[k] - p[k]).powi(2)).sum::<f64>().sqrt();
        assert!(distance(after) < 0.1 * distance(tool), "{:.4} -> {:.4}", distance(tool), distance(after));
        // A pull in the null space changes the joints, not the tool (to first order).
        let pull = JointColumns::from_fn(|j, _| if j < 7 { 0.05 } else { 0.0 });
        let with_pull = dls_step(&jacobian, &Vector6::zeros(), Some(&pull)).unwrap();
        assert!(with_pull.norm() > 0.01);
        assert!(distance(chain.tool_position(&moved_by(&q, &with_pull))) - distance(tool) < 1e-3);
    }

    /// A held joint keeps still and the others still move the tool toward
    /// its target: at least half the way, to first order.
    #[test]
    fn a_held_joint_keeps_still_and_the_others_still_move_the_tool_toward_its_target() {
        let chain = KinematicChain::panda();
        let q = PANDA_READY.to_vec();
        let tool = chain.tool_position(&q);
        let error = Vector6::new(0.02, 0.0, 0.02, 0.0, 0.0, 0.0);
        let jacobian = tool_jacobian(&chain, &q, &ALL_SEVEN, false);
        let free = dls_step(&jacobian, &error, None).unwrap();
        assert!(free[3].abs() > 1e-3, "the elbow takes part in the free step: {free:?}");
        let held = dls_step_with_held(&jacobian, &error, None, |c, _| c == 3).unwrap();
        assert_eq!(held[3], 0.0, "the held elbow moved: {held:?}");
        // The tool moves as the held step says, the elbow standing still.
        let after = chain.tool_position(&moved_by(&q, &held));
        let moved = Vector3::new(after[0] - tool[0], after[1] - tool[1], after[2] - tool[2]);
        assert!(moved.dot(&Vector3::new(0.02, 0.0, 0.02)) > 0.5 * error.fixed_rows::<3>(0).norm_squared(), "the others did not take the tool toward its target: {moved:?}");
        // Held only where the found step pushes that way: a condition the step does not meet holds nothing.
        let unmet = dls_step_with_held(&jacobian, &error, None, |c, change| c == 3 && change * free[3] < 0.0).unwrap();
        assert_eq!(unmet, free);
    }

    /// The padding (zero angular rows, zero columns past the arm's joints)
    /// gives the step of the plain 3 × 7 position problem.
    #[test]
    fn the_padded_step_is_the_plain_position_step() {
        let chain = KinematicChain::panda();
        let q = PANDA_READY.to_vec();
        let jacobian = tool_jacobian(&chain, &q, &ALL_SEVEN, false);
        let error = Vector6::new(0.03, -0.02, 0.01, 0.0, 0.0, 0.0);
        let pull = JointColumns::from_fn(|j, _| if j < 7 { 0.1 * (j as f64 - 3.0) } else { 0.0 });
        let padded = dls_step(&jacobian, &error, Some(&pull)).unwrap();

        let j = DMatrix::from_fn(3, 7, |r, c| jacobian[(r, c)]);
        let damped = &j * j.transpose() + DMatrix::identity(3, 3) * (DAMPING * DAMPING);
        let pseudo = j.transpose() * damped.try_inverse().unwrap();
        let e = DVector::from_column_slice(&[0.03, -0.02, 0.01]);
        let p = DVector::from_iterator(7, (0..7).map(|k| pull[k]));
        let plain = &pseudo * e + (DMatrix::identity(7, 7) - &pseudo * &j) * p;
        for k in 0..7 {
            assert!((padded[k] - plain[k]).abs() < 1e-9, "joint {k}: {} against {}", padded[k], plain[k]);
        }
        assert!(padded.rows(7, MAX_JOINTS - 7).iter().all(|&v| v == 0.0), "no joint past the arm's moves: {padded:?}");
    }

    #[test]
    fn a_pose_step_reaches_a_rotated_target_and_the_jacobian_matches_a_finite_rotation() {
        let chain = KinematicChain::panda();
        let q = PANDA_READY.to_vec();
        let pose = chain.tool_pose_with(|i| q[i]);
        let target_rotation = Rotation3::from_euler_angles(0.05, -0.03, 0.08) * pose.rotation.to_rotation_matrix();
        let target_position = pose.translation.vector + Vector3::new(0.01, 0.0, -0.01);
        let mut q_now = q.clone();
        for _ in 0..20 {
            let now = chain.tool_pose_with(|i| q_now[i]);
            let mut error = Vector6::zeros();
            error.fixed_rows_mut::<3>(0).copy_from(&(target_position - now.translation.vector));
            error.fixed_rows_mut::<3>(3).copy_from(&orientation_error(&target_rotation, &now.rotation.to_rotation_matrix()));
            let dq = dls_step(&tool_jacobian(&chain, &q_now, &ALL_SEVEN, true), &error, None).unwrap();
            q_now = moved_by(&q_now, &dq);
        }
        let reached = chain.tool_pose_with(|i| q_now[i]);
        assert!((reached.translation.vector - target_position).norm() < 1e-4);
        assert!(orientation_error(&target_rotation, &reached.rotation.to_rotation_matrix()).norm() < 1e-4);
        // Rounding that puts a product of rotations' trace past 3 gives no NaN.
        let tiny = Rotation3::from_axis_angle(&Vector3::z_axis(), 1e-8);
        let almost = Rotation3::from_matrix_unchecked(tiny.matrix() * (1.0 + 1e-12));
        assert!(orientation_error(&almost, &Rotation3::identity()).iter().all(|v| v.is_finite()));
        // Leaving a joint out leaves its column out (zero).
        let full = tool_jacobian(&chain, &q, &ALL_SEVEN, true);
        let without_last = tool_jacobian(&chain, &q, &ALL_SEVEN[..6], true);
        assert_eq!(without_last.columns(0, 6), full.columns(0, 6));
        assert!(full.column(6).norm() > 0.01 && without_last.column(6).norm() == 0.0);
    }

    #[test]
    fn a_command_follows_a_share_of_the_way_and_never_more_than_its_step() {
        let mut command = 0.0;
        follow(0.0, 0.1, &mut command, 1.0);
        assert!((command - FOLLOW_SHARE * 0.1).abs() < 1e-12);
        let mut command = 0.0;
        follow(0.0, 5.0, &mut command, 1.0);
        assert!((command - FOLLOW_SHARE * MAX_SOLUTION_STEP).abs() < 1e-12, "the solution is bounded: {command}");
        let mut command = 0.0;
        follow(0.0, 0.2, &mut command, 0.01);
        assert_eq!(command, 0.01);
    }
}
