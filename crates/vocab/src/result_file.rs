//! Result files that are either complete or absent: written to a temporary file beside the
//! target and renamed over it only when the writer commits.
//!
//! A run that ends early (unreachable target, a bad flag found late, a crash) therefore never
//! truncates an earlier result at the same path, and a reader never sees half a file. Every
//! command that writes a result (`load --json/--summary-export/--ndjson`, `compare --out`,
//! `report --out`, `k8s run --out`) writes through this.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A result file being written; the target path is only replaced by [`ResultFile::commit`].
/// Dropped without a commit, the temporary file is removed and the target is untouched.
#[derive(Debug)]
pub struct ResultFile {
    out: Out,
    path: PathBuf,
}

#[derive(Debug)]
enum Out {
    /// A regular file: written beside the target, renamed over it on commit.
    Staged(tempfile::NamedTempFile),
    /// A device, pipe or socket (`/dev/stdout`, a FIFO): written in place, since there is
    /// nothing to keep and a rename would replace the device node.
    Stream(File),
}

impl ResultFile {
    /// Starts writing `path`: refuses a directory, and creates the temporary file in the same
    /// directory now, so a path that cannot be written fails before any work is done.
    pub fn create(path: &Path) -> io::Result<ResultFile> {
        if path.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "it is a directory; give a file name",
            ));
        }
        if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            return Ok(ResultFile {
                out: Out::Stream(File::create(path)?),
                path: path.to_path_buf(),
            });
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(dir)?;
        Ok(ResultFile {
            out: Out::Staged(tmp),
            path: path.to_path_buf(),
        })
    }

    /// The file being written.
    pub fn file(&mut self) -> &mut File {
        match &mut self.out {
            Out::Staged(t) => t.as_file_mut(),
            Out::Stream(f) => f,
        }
    }

    /// The path this file will replace.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes the contents and renames them over the target path.
    pub fn commit(mut self) -> io::Result<()> {
        self.file().flush()?;
        match self.out {
            Out::Staged(t) => {
                t.as_file().sync_all()?;
                t.persist(&self.path).map_err(|e| e.error)?;
            }
            Out::Stream(_) => {}
        }
        Ok(())
    }
}

impl Write for ResultFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

/// Writes `bytes` to `path` in one step: the earlier contents stay until the new ones are
/// complete.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = ResultFile::create(path)?;
    f.write_all(bytes)?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn an_uncommitted_file_leaves_the_earlier_result_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        std::fs::write(&path, "earlier").unwrap();
        {
            let mut f = ResultFile::create(&path).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "earlier");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        write(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(ResultFile::create(dir.path()).is_err());
        assert!(ResultFile::create(&dir.path().join("missing/out.json")).is_err());
        // A device is written in place: nothing to keep, nothing to rename over it.
        let mut null = ResultFile::create(Path::new("/dev/null")).unwrap();
        null.write_all(b"x").unwrap();
        null.commit().unwrap();
        assert!(
            std::fs::metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }
}
