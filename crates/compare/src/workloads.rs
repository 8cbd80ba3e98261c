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

/// Weights of the `mix` workload: mostly cheap requests, some parsing, a little compute,
/// allocation and waiting, the shape of a typical small API service.
pub const MIX_WEIGHTS: [(&str, u32); 5] = [
    ("echo", 4),
    ("json", 2),
    ("sleep", 2),
    ("hash", 1),
    ("alloc", 1),
];

/// What `--workload mix` does.
pub const MIX_DESCRIPTION: &str = "every endpoint in one run, each iteration picking one (echo 4 : json 2 : sleep 2 : hash 1 : alloc 1), reported per request";

fn body_of(name: &str) -> String {
    match name {
        "hash" => "wasmbench ".repeat(103)[..1024].to_string(),
        "json" => JSON_DOC.to_string(),
        _ => String::new(),
    }
}

/// Sets the load request of `cfg` for workload `name` (or the request mix for `mix`).
pub fn apply(cfg: &mut CompareConfig, name: &str) -> Result<(), CompareError> {
    if name == "mix" {
        cfg.workload = "mix".into();
        cfg.load.mix = MIX_WEIGHTS
            .iter()
            .filter_map(|&(n, weight)| {
                let w = WORKLOADS.iter().find(|w| w.name == n)?;
                Some(wasmbench_load::MixRequest {
                    name: n.to_string(),
                    weight,
                    method: w.method.to_string(),
                    path: w.path.to_string(),
                    headers: Default::default(),
                    body: body_of(n).into_bytes(),
                })
            })
            .collect();
        return Ok(());
    }
    let Some(w) = WORKLOADS.iter().find(|w| w.name == name) else {
        return Err(CompareError::Invalid(format!(
            "unknown workload {name:?}: use one of {}, mix",
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
    cfg.load.body = body_of(w.name);
    cfg.load.mix.clear();
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
        apply(&mut c, "mix").unwrap();
        assert_eq!(
            c.load.mix.len(),
            WORKLOADS.len(),
            "every endpoint is in the mix"
        );
        for m in &c.load.mix {
            let w = WORKLOADS.iter().find(|w| w.name == m.name).unwrap();
            assert_eq!((m.method.as_str(), m.path.as_str()), (w.method, w.path));
        }
        assert_eq!(c.load.mix[1].body.len(), JSON_DOC.len());
        c.validate().unwrap();
        let e = apply(&mut c, "nope").unwrap_err().to_string();
        assert!(e.contains("echo, hash, json, alloc, sleep, mix"), "{e}");
    }
}
