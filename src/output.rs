//! All-or-nothing output folders: a job writes into a temporary folder beside its target and
//! [`Staging::commit`] moves the results into place at the end, so a job that fails (bad input
//! found late, a full disk, an interrupted run) leaves no half-written output behind — the target
//! keeps what it held before.
//!
//! ```no_run
//! use tpmap::output::Staging;
//! let stage = Staging::new("tpmap-out".as_ref())?;
//! std::fs::write(stage.path().join("report.json"), "{}").map_err(|e| tpmap::Error::io("report.json", e))?;
//! stage.commit()?; // tpmap-out/report.json appears only now
//! # Ok::<(), tpmap::Error>(())
//! ```

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A temporary folder beside an output folder, moved into place by [`Staging::commit`] and
/// removed if dropped uncommitted.
#[derive(Debug)]
pub struct Staging {
    target: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

impl Staging {
    /// Creates `.<name>.tpmap-partial-<pid>-<n>` in the target's parent folder (created if
    /// missing). The target itself is not touched until [`Staging::commit`].
    pub fn new(target: &Path) -> Result<Staging> {
        let target = std::path::absolute(target).map_err(|e| Error::io(target, e))?;
        let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
            return Err(Error::Config(format!("cannot write outputs to {}: give a folder below it", target.display())));
        };
        if target.exists() && !target.is_dir() {
            return Err(Error::Config(format!("{} exists and is not a folder", target.display())));
        }
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let tmp = parent.join(format!(".{}.tpmap-partial-{}-{stamp}", name.to_string_lossy(), std::process::id()));
        std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(Staging { target, tmp, committed: false })
    }

    /// The folder to write into.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// The folder the results will be moved to.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Moves the results into place: the whole folder when the target does not exist yet,
    /// otherwise each file and folder written, replacing those of the same name (other entries
    /// of the target are kept).
    pub fn commit(mut self) -> Result<()> {
        if !self.target.exists() {
            std::fs::rename(&self.tmp, &self.target).map_err(|e| Error::io(&self.target, e))?;
        } else {
            let entries = std::fs::read_dir(&self.tmp).map_err(|e| Error::io(&self.tmp, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(&self.tmp, e))?;
                let dest = self.target.join(entry.file_name());
                if let Ok(meta) = std::fs::symlink_metadata(&dest) {
                    let gone = if meta.is_dir() { std::fs::remove_dir_all(&dest) } else { std::fs::remove_file(&dest) };
                    gone.map_err(|e| Error::io(&dest, e))?;
                }
                std::fs::rename(entry.path(), &dest).map_err(|e| Error::io(&dest, e))?;
            }
            std::fs::remove_dir(&self.tmp).map_err(|e| Error::io(&self.tmp, e))?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_leaves_nothing_and_commit_replaces_by_name() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        {
            let s = Staging::new(&out).unwrap();
            std::fs::write(s.path().join("a.txt"), "1").unwrap();
        }
        assert!(!out.exists());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0, "the temporary folder is removed");

        std::fs::create_dir_all(out.join("plan")).unwrap();
        std::fs::write(out.join("plan/old.csv"), "old").unwrap();
        std::fs::write(out.join("keep.txt"), "mine").unwrap();
        let s = Staging::new(&out).unwrap();
        std::fs::create_dir(s.path().join("plan")).unwrap();
        std::fs::write(s.path().join("plan/new.csv"), "new").unwrap();
        s.commit().unwrap();
        assert!(out.join("plan/new.csv").exists() && !out.join("plan/old.csv").exists());
        assert_eq!(std::fs::read_to_string(out.join("keep.txt")).unwrap(), "mine");
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
    }
}
