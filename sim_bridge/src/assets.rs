//! Finding model files inside installed Python packages, and loading them.

use std::path::{Path, PathBuf};

use mujoco_rs::prelude::MjModel;

/// Packages whose files we load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetPackage {
    /// Gymnasium's MuJoCo task models.
    Gymnasium,
    /// gym-hil's Franka Panda scene.
    GymHil,
}

impl AssetPackage {
    fn relative_dir(self) -> &'static str {
        match self {
            AssetPackage::Gymnasium => "gymnasium/envs/mujoco/assets",
            AssetPackage::GymHil => "gym_hil/assets",
        }
    }

    fn pip_name(self) -> &'static str {
        match self {
            AssetPackage::Gymnasium => "gymnasium==1.4.0",
            AssetPackage::GymHil => "gym-hil==0.1.14",
        }
    }

    /// The path of `file` inside the installed package.
    pub fn path(self, file: &str) -> Result<PathBuf, SimError> {
        let roots = site_packages_dirs();
        for root in &roots {
            let candidate = root.join(self.relative_dir()).join(file);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        Err(SimError::AssetMissing {
            file: file.to_string(),
            package: self.pip_name(),
            looked_in: roots.iter().map(|r| r.join(self.relative_dir()).display().to_string()).collect::<Vec<_>>().join(", "),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("model file {file} not found in {looked_in}; install {package} (scripts/setup.sh does) or set VIRTUAL_ENV to the venv holding it")]
    AssetMissing { file: String, package: &'static str, looked_in: String },
    #[error("MuJoCo could not load {path}: {reason}")]
    ModelLoad { path: PathBuf, reason: String },
    #[error("{task}: action has {got} values, the task takes {expected}")]
    ActionSize { task: &'static str, expected: usize, got: usize },
    #[error("{task}: action[{index}] is {value}; actions must be finite")]
    NonFiniteAction { task: &'static str, index: usize, value: f64 },
    #[error("state field {field} has {got} values, the model has {expected}")]
    StateSize { field: &'static str, expected: usize, got: usize },
    #[error("not supported: {what}")]
    Unsupported { what: &'static str },
    #[error("camera `{name}` is not in the model; it has: {known}")]
    UnknownCamera { name: String, known: String },
    #[error("offscreen rendering failed for camera `{camera}`: {reason} (headless machines need Mesa's EGL: libegl1 libegl-mesa0 libgl1-mesa-dri, which scripts/setup.sh installs)")]
    Render { camera: String, reason: String },
}

/// Site-packages folders of the project venv (`RRL_VENV`, then `VIRTUAL_ENV`).
fn site_packages_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for var in ["RRL_VENV", "VIRTUAL_ENV"] {
        let Some(venv) = std::env::var_os(var) else { continue };
        let lib = Path::new(&venv).join("lib");
        let Ok(entries) = std::fs::read_dir(&lib) else { continue };
        for entry in entries.flatten() {
            let site = entry.path().join("site-packages");
            if entry.file_name().to_string_lossy().starts_with("python") && site.is_dir() && !dirs.contains(&site) {
                dirs.push(site);
            }
        }
    }
    dirs
}

/// Loads an MJCF file, turning MuJoCo's complaint into an error naming it.
pub fn load_model(path: &Path) -> Result<MjModel, SimError> {
    if !path.is_file() {
        return Err(SimError::ModelLoad { path: path.to_path_buf(), reason: "no such file".into() });
    }
    MjModel::from_xml(path).map_err(|e| SimError::ModelLoad { path: path.to_path_buf(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inverted pendulum from Gymnasium's package: a push on the cart
    /// moves it, and a tilted pole falls further under gravity.
    #[test]
    fn gymnasium_pendulum_loads_and_its_physics_respond() {
        let path = AssetPackage::Gymnasium.path("inverted_pendulum.xml").unwrap();
        let model = load_model(&path).unwrap();
        let mut data = model.make_data();
        assert_eq!(data.qpos().len(), 2, "slider and hinge");
        data.qpos_mut()[1] = 0.1;
        for _ in 0..100 {
            data.ctrl_mut()[0] = 1.0;
            data.step();
        }
        let (cart, pole) = (data.qpos()[0], data.qpos()[1]);
        assert!(cart > 0.01, "a positive force must move the cart right, got {cart}");
        assert!(pole.abs() > 0.1, "the pole must not stay at its initial tilt, got {pole}");
    }

    #[test]
    fn panda_scene_of_gym_hil_loads() {
        let path = AssetPackage::GymHil.path("scene.xml").unwrap();
        let model = load_model(&path).unwrap();
        let data = model.make_data();
        assert!(data.qpos().len() >= 7 + 7, "7 arm joints, gripper joints and a free cube, got nq = {}", data.qpos().len());
    }

    #[test]
    fn a_malformed_model_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.xml");
        std::fs::write(&path, "<mujoco><worldbody><body><geom type='sphere'></body></mujoco>").unwrap();
        let err = load_model(&path).err().expect("a malformed model must not load");
        assert!(err.to_string().contains("broken.xml"), "{err}");
    }

    #[test]
    fn a_missing_asset_names_the_package_to_install() {
        let err = AssetPackage::Gymnasium.path("no_such_model.xml").unwrap_err();
        assert!(err.to_string().contains("gymnasium==1.4.0"), "{err}");
    }
}
