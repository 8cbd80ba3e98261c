//! Writing a cache entry under a name no other writer uses, then renaming it into place, so a
//! reader never sees a partial file and two writers never take each other's file away.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A temporary path beside `dest`, unique to this call: the process id keeps other processes
/// apart, a counter keeps this process's threads apart (two hosts in one process compile the
/// same module at the same time in the tests).
pub(crate) fn staging_path(dest: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
    // The extension is kept last: `wasmedge compile` picks its output format from it.
    let ext = dest.extension().and_then(|e| e.to_str()).unwrap_or("tmp");
    dest.with_file_name(format!(".{name}.{}-{n}.tmp.{ext}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_gets_its_own_name_beside_the_destination() {
        let dest = Path::new("/cache/abc-aot.wasm");
        let a = staging_path(dest);
        let b = staging_path(dest);
        assert_ne!(a, b);
        assert_eq!(a.parent(), dest.parent());
        assert_eq!(a.extension().and_then(|e| e.to_str()), Some("wasm"));
    }
}
