//! Helpers shared by the CLI's process-level tests.

/// Processes (other than `exclude`) whose environment carries `tag`.
pub fn processes_tagged(tag: &str, exclude: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == exclude {
            continue;
        }
        if let Ok(env) = std::fs::read(entry.path().join("environ"))
            && env.split(|&b| b == 0).any(|kv| kv == tag.as_bytes())
        {
            found.push(pid);
        }
    }
    found
}
