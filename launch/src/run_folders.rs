//! The recorded episodes of the run folders a command is given.

use std::path::PathBuf;

use anyhow::bail;

/// The episode files in `folders` (e.g. `demos`, `episodes`) of each of
/// `runs`, run by run and folder by folder; a run that is not a folder is
/// refused by name.
pub fn episode_files(runs: &[PathBuf], folders: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for run in runs {
        if !run.is_dir() {
            bail!("{}: no such run folder", run.display());
        }
        for folder in folders {
            files.extend(recording::list_episodes(&run.join(folder))?);
        }
    }
    Ok(files)
}
