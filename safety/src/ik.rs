//! One damped least-squares inverse-kinematics step, shared by the
//! simulated Panda's Cartesian controller and the real-arm tasks, so the
//! simulation that stands in for a real arm moves the way the real-arm
//! path does.
//!
//! Its output is a joint command for the gate, never a write to hardware:
//! the gate still limits whatever it proposes. Not on the gate's per-tick
//! path (it allocates its small matrices).

use nalgebra::{DMatrix, DVector, Rotation3, UnitQuaternion, Vector3};

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

/// The joint change toward the task-space `error` for `jacobian` (task
/// rows × joint columns): Jᵀ (J Jᵀ + λ² I)⁻¹ e, plus (I − J⁺ J) `null_pull`
/// when given (a secondary goal, e.g. toward a rest pose, that does not
/// disturb the task). `None` when the damped matrix cannot be inverted.
pub fn dls_step(jacobian: &DMatrix<f64>, error: &DVector<f64>, null_pull: Option<&DVector<f64>>) -> Option<DVector<f64>> {
    let rows = jacobian.nrows();
    let jjt = jacobian * jacobian.transpose() + DMatrix::identity(rows, rows) * (DAMPING * DAMPING);
    let pseudo = jacobian.transpose() * jjt.try_inverse()?;
    let mut dq = &pseudo * error;
    if let Some(pull) = null_pull {
        let joints = jacobian.ncols();
        dq += (DMatrix::identity(joints, joints) - &pseudo * jacobian) * pull;
    }
    Some(dq)
}

/// Moves a joint `command` a share of the way toward the solution `q + dq`
/// (with `dq` bounded by `MAX_SOLUTION_STEP`), by at most `max_step`.
pub fn follow(q: f64, dq: f64, command: &mut f64, max_step: f64) {
    let solution = q + dq.clamp(-MAX_SOLUTION_STEP, MAX_SOLUTION_STEP);
    *command += (FOLLOW_SHARE * (solution - *command)).clamp(-max_step, max_step);
}

/// The tool position's Jacobian (3 × joints) of `chain` at `q`.
pub fn position_jacobian(chain: &KinematicChain, q: &[f64]) -> DMatrix<f64> {
    let all: Vec<usize> = (0..q.len()).collect();
    tool_jacobian(chain, q, &all, false)
}

/// The tool's Jacobian of `chain` at `q` for the joints `columns` (indices
/// into `q`; a gripper joint is left out): translation rows 0..3, and with
/// `rotation` the base-frame angular rows 3..6. By forward differences:
/// exact enough for a damped step, and it needs nothing but the forward
/// kinematics the gate already has.
pub fn tool_jacobian(chain: &KinematicChain, q: &[f64], columns: &[usize], rotation: bool) -> DMatrix<f64> {
    const H: f64 = 1e-6;
    let pose = chain.tool_pose_with(|i| q[i]);
    let mut jacobian = DMatrix::zeros(if rotation { 6 } else { 3 }, columns.len());
    let mut shifted = q.to_vec();
    for (c, &j) in columns.iter().enumerate() {
        shifted[j] += H;
        let moved = chain.tool_pose_with(|i| shifted[i]);
        let dp = (moved.translation.vector - pose.translation.vector) / H;
        jacobian.fixed_view_mut::<3, 1>(0, c).copy_from(&dp);
        if rotation {
            let dr = orientation_error(&moved.rotation.to_rotation_matrix(), &pose.rotation.to_rotation_matrix()) / H;
            jacobian.fixed_view_mut::<3, 1>(3, c).copy_from(&dr);
        }
        shifted[j] = q[j];
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

    #[test]
    fn a_step_moves_the_tool_toward_its_target_and_the_null_space_pull_leaves_the_tool_alone() {
        let chain = KinematicChain::panda();
        let q = vec![0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785];
        let tool = chain.tool_position(&q);
        let target = [tool[0] + 0.02, tool[1] - 0.01, tool[2] + 0.01];
        let error = DVector::from_iterator(3, (0..3).map(|k| target[k] - tool[k]));
        let jacobian = position_jacobian(&chain, &q);
        let dq = dls_step(&jacobian, &error, None).unwrap();
        let moved: Vec<f64> = q.iter().zip(dq.iter()).map(|(a, b)| a + b).collect();
        let after = chain.tool_position(&moved);
        let distance = |p: [f64; 3]| (0..3).map(|k| (target[k] - p[k]).powi(2)).sum::<f64>().sqrt();
        assert!(distance(after) < 0.1 * distance(tool), "{:.4} -> {:.4}", distance(tool), distance(after));
        // A pull in the null space changes the joints, not the tool (to first order).
        let pull = DVector::from_element(7, 0.05);
        let with_pull = dls_step(&jacobian, &DVector::zeros(3), Some(&pull)).unwrap();
        assert!(with_pull.norm() > 0.01);
        let pulled: Vec<f64> = q.iter().zip(with_pull.iter()).map(|(a, b)| a + b).collect();
        assert!(distance(chain.tool_position(&pulled)) - distance(tool) < 1e-3);
    }

    #[test]
    fn a_pose_step_reaches_a_rotated_target_and_the_jacobian_matches_a_finite_rotation() {
        let chain = KinematicChain::panda();
        let q = vec![0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785];
        let columns: Vec<usize> = (0..7).collect();
        let pose = chain.tool_pose_with(|i| q[i]);
        let target_rotation = Rotation3::from_euler_angles(0.05, -0.03, 0.08) * pose.rotation.to_rotation_matrix();
        let target_position = pose.translation.vector + Vector3::new(0.01, 0.0, -0.01);
        let mut q_now = q.clone();
        for _ in 0..20 {
            let now = chain.tool_pose_with(|i| q_now[i]);
            let mut error = DVector::zeros(6);
            error.fixed_rows_mut::<3>(0).copy_from(&(target_position - now.translation.vector));
            error.fixed_rows_mut::<3>(3).copy_from(&orientation_error(&target_rotation, &now.rotation.to_rotation_matrix()));
            let dq = dls_step(&tool_jacobian(&chain, &q_now, &columns, true), &error, None).unwrap();
            q_now.iter_mut().zip(dq.iter()).for_each(|(q, d)| *q += d);
        }
        let reached = chain.tool_pose_with(|i| q_now[i]);
        assert!((reached.translation.vector - target_position).norm() < 1e-4);
        assert!(orientation_error(&target_rotation, &reached.rotation.to_rotation_matrix()).norm() < 1e-4);
        // Rounding that puts a product of rotations' trace past 3 gives no NaN.
        let tiny = Rotation3::from_axis_angle(&Vector3::z_axis(), 1e-8);
        let almost = Rotation3::from_matrix_unchecked(tiny.matrix() * (1.0 + 1e-12));
        assert!(orientation_error(&almost, &Rotation3::identity()).iter().all(|v| v.is_finite()));
        // Leaving a joint out leaves its column out.
        let without_last = tool_jacobian(&chain, &q, &columns[..6], true);
        assert_eq!(without_last.shape(), (6, 6));
        assert_eq!(without_last, tool_jacobian(&chain, &q, &columns, true).columns(0, 6));
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
