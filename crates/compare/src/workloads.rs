//! Named workloads of our service: which request the load sends. Each endpoint exercises a
//! different cost of running as Wasm (see docs/workloads.md).

use crate::config::CompareConfig;
use crate::error::CompareError;

/// A named request.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Name accepted by `--workload`.
    pub name: &'static str,
    /// HTTP method.
    pub method: &'static str,
    /// Path and query.
    pub path: &'static str,
    /// What it measures.
    pub description: &'static str,
}

/// The 4 KiB JSON document the `json` workload posts.
pub const JSON_DOC: &str = include_str!("../../echo/data/doc-4k.json");

/// Every workload.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "echo",
        method: "GET",
        path: "/",
        description: "the demo's request: I/O path only",
    },
    Workload {
        name: "hash",
        method: "POST",
        path: "/hash?rounds=100",
        description: "SHA-256 over a 1 KiB body 100 times: compute (JIT code quality, bounds checks)",
    },
    Workload {
        name: "json",
        method: "POST",
        path: "/json",
        description: "parse and re-serialise a 4 KiB JSON document: parsing and allocation",
    },
    Workload {
        name: "alloc",
        method: "GET",
        path: "/alloc?kb=256",
        description: "allocate and touch 256 KiB in small objects: the allocator and memory growth",
    },
    Workload {
        name: "sleep",
        method: "GET",
        path: "/sleep?ms=5",
        description: "answer after 5 ms without CPU: timers and scheduling, a known delay",
    },
];

/// Sets the load request of `cfg` for workload `name`.
pub fn apply(cfg: &mut CompareConfig, name: &str) -> Result<(), CompareError> {
    let Some(w) = WORKLOADS.iter().find(|w| w.name == name) else {
        return Err(CompareError::Invalid(format!(
            "unknown workload {name:?}: use one of {}",
            WORKLOADS
                .iter()
                .map(|w| w.name)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    cfg.workload = w.name.to_string();
    cfg.load.method = w.method.to_string();
    cfg.load.path = w.path.to_string();
    cfg.load.body = match w.name {
        "hash" => "wasmbench ".repeat(103)[..1024].to_string(),
        "json" => JSON_DOC.to_string(),
        _ => String::new(),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_applies() {
        for w in WORKLOADS {
            let mut c = CompareConfig::default();
            apply(&mut c, w.name).unwrap();
            assert_eq!(c.load.path, w.path);
            c.validate().unwrap();
        }
        assert_eq!(JSON_DOC.len() / 1024, 4);
        let mut c = CompareConfig::default();
        assert!(apply(&mut c, "mix").is_err());
    }
}
