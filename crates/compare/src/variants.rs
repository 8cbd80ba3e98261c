//! The registry of named variants: a runtime, a build target and its settings.

use std::path::PathBuf;
use std::sync::Arc;

use wasmbench_runtime::{EmbeddedWasmtime, Native, Runtime, Target};

use crate::config::VariantSpec;
use crate::error::CompareError;

/// A variant known by name.
#[derive(Debug, Clone, Copy)]
pub struct Known {
    /// Name accepted by `--variants`.
    pub name: &'static str,
    /// One line on what it runs.
    pub description: &'static str,
}

/// A variant ready to run.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Name in reports.
    pub name: String,
    /// The runtime.
    pub runtime: Arc<dyn Runtime>,
    /// What the workload is built for.
    pub target: Target,
    /// Extra environment for the server.
    pub env: Vec<(String, String)>,
    /// A prebuilt artifact instead of our build.
    pub artifact: Option<PathBuf>,
}

type Factory = fn() -> (Arc<dyn Runtime>, Target);

const REGISTRY: &[(Known, Factory)] = &[
    (
        Known {
            name: "native",
            description: "the echo binary built for the host, as a process",
        },
        || (Arc::new(Native), Target::Native),
    ),
    (
        Known {
            name: "wasmtime-wasip2",
            description: "embedded Wasmtime, wasm32-wasip2 component, Cranelift, cached .cwasm, pooling",
        },
        || (Arc::new(EmbeddedWasmtime::new(Target::Wasip2)), Target::Wasip2),
    ),
    (
        Known {
            name: "wasmtime-wasip1",
            description: "embedded Wasmtime, wasm32-wasip1 module with a preopened listener",
        },
        || (Arc::new(EmbeddedWasmtime::new(Target::Wasip1)), Target::Wasip1),
    ),
    (
        Known {
            name: "wasmtime-wasip2-nocache",
            description: "embedded Wasmtime, wasip2, compiled by Cranelift at every start",
        },
        || {
            let mut r = EmbeddedWasmtime::new(Target::Wasip2);
            r.precompiled = false;
            (Arc::new(r), Target::Wasip2)
        },
    ),
    (
        Known {
            name: "wasmtime-wasip2-nopool",
            description: "embedded Wasmtime, wasip2, on-demand instance allocator",
        },
        || {
            let mut r = EmbeddedWasmtime::new(Target::Wasip2);
            r.pooling = false;
            (Arc::new(r), Target::Wasip2)
        },
    ),
];

/// Every variant name this build knows, in registry order.
pub fn known_variants() -> Vec<Known> {
    REGISTRY.iter().map(|(k, _)| *k).collect()
}

/// Turns a spec into a runnable variant.
pub fn resolve(spec: &VariantSpec) -> Result<Resolved, CompareError> {
    let key = if spec.runtime.is_empty() {
        spec.name.as_str()
    } else {
        spec.runtime.as_str()
    };
    let Some((_, factory)) = REGISTRY.iter().find(|(k, _)| k.name == key) else {
        return Err(CompareError::UnknownVariant {
            name: key.to_string(),
            known: REGISTRY
                .iter()
                .map(|(k, _)| k.name)
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let (runtime, mut target) = factory();
    if !spec.target.is_empty() {
        target = spec.target.parse().map_err(|_| {
            CompareError::Invalid(format!(
                "variant {:?}: unknown target {:?} (native, wasip1, wasip2)",
                spec.name, spec.target
            ))
        })?;
    }
    Ok(Resolved {
        name: spec.name.clone(),
        runtime,
        target,
        env: spec.env.clone(),
        artifact: spec.artifact.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::variant;

    #[test]
    fn resolves_known_and_rejects_unknown() {
        let r = resolve(&variant("wasmtime-wasip2")).unwrap();
        assert_eq!(r.target, Target::Wasip2);
        assert_eq!(r.runtime.info().name, "wasmtime");
        let e = resolve(&variant("v8")).unwrap_err().to_string();
        assert!(e.contains("v8") && e.contains("native"), "{e}");
    }
}
