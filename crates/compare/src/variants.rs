//! The registry of named variants: a runtime, the build of the workload it runs, its settings.

use std::path::PathBuf;
use std::sync::Arc;

use wasmbench_runtime::external::{WasmEdgeCli, WasmerCli, WasmtimeCli};
use wasmbench_runtime::inspect::WasiService;
use wasmbench_runtime::{
    Artifact, BuildOptions, EmbeddedWasiHttp, EmbeddedWasmtime, ExecMode, Native, PoolTuning,
    Runtime, RuntimeError, Target,
};

use crate::config::VariantSpec;
use crate::error::CompareError;

/// Which build of the workload a variant runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Build {
    /// `crates/echo` for a target.
    Echo(Target),
    /// `crates/echo-http`: the `wasi:http/proxy` component (WASI 0.2).
    EchoHttp,
    /// `crates/echo-http-p3`: the `wasi:http/service` component (WASI 0.3).
    EchoHttpP3,
    /// `crates/echo-wasmedge`: the echo over WasmEdge's socket ABI (wasip1).
    EchoWasmedge,
    /// No artifact: a user command line.
    Command,
}

impl Build {
    /// Builds the artifact.
    pub fn build(self, opts: &BuildOptions) -> Result<Artifact, RuntimeError> {
        match self {
            Build::Echo(t) => wasmbench_runtime::build_echo(t, opts),
            Build::EchoHttp => wasmbench_runtime::build::build_echo_http(opts),
            Build::EchoHttpP3 => wasmbench_runtime::build::build_echo_http_p3(opts),
            Build::EchoWasmedge => wasmbench_runtime::build::build_echo_wasmedge(opts),
            Build::Command => Err(RuntimeError::Config(
                "a command-line variant has no artifact to build".into(),
            )),
        }
    }

    /// What kind of program a variant of this build takes, for `runtimes` and for users who
    /// bring their own (`--wasm`, `--native-cmd`).
    pub fn accepts(self) -> &'static str {
        match self {
            Build::Echo(Target::Native) => "native executable",
            Build::Echo(Target::Wasip1) => "wasip1 core module",
            Build::Echo(Target::Wasip2) => "wasip2 component (wasi:sockets)",
            // Not a build target: no variant is made of it.
            Build::Echo(Target::Wasm) => "Wasm of a kind not observed",
            Build::EchoHttp => "wasi:http/proxy component (WASI 0.2)",
            Build::EchoHttpP3 => "wasi:http/service component (WASI 0.3)",
            Build::EchoWasmedge => "wasip1 module, WasmEdge sockets",
            Build::Command => "command line",
        }
    }

    /// What a `.wasm` given to a variant of this build must be; `None` for native builds.
    pub fn service(self) -> Option<WasiService> {
        match self {
            Build::Echo(Target::Native | Target::Wasm) | Build::Command => None,
            Build::Echo(t @ (Target::Wasip1 | Target::Wasip2)) => Some(WasiService::Command(t)),
            Build::EchoWasmedge => Some(WasiService::Command(Target::Wasip1)),
            Build::EchoHttp => Some(WasiService::HttpProxy),
            Build::EchoHttpP3 => Some(WasiService::HttpService),
        }
    }

    /// The workload crate this build is made from.
    pub fn source(self) -> &'static str {
        match self {
            Build::Echo(_) => "crates/echo",
            Build::EchoHttp => "crates/echo-http (crates/echo's routes behind wasi:http)",
            Build::EchoHttpP3 => "crates/echo-http-p3 (crates/echo's routes behind wasi:http 0.3)",
            Build::EchoWasmedge => "crates/echo-wasmedge (crates/echo over WasmEdge sockets)",
            Build::Command => "the user's command",
        }
    }

    /// The target of the artifact.
    pub fn target(self) -> Target {
        match self {
            Build::Echo(t) => t,
            Build::EchoHttp | Build::EchoHttpP3 => Target::Wasip2,
            Build::EchoWasmedge => Target::Wasip1,
            Build::Command => Target::Native,
        }
    }
}

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
    /// Which build it runs.
    pub build: Build,
    /// What the workload is built for.
    pub target: Target,
    /// Extra environment for the server.
    pub env: Vec<(String, String)>,
    /// A prebuilt artifact instead of our build.
    pub artifact: Option<PathBuf>,
    /// The user's command line, for bring-your-own native services.
    pub command: Option<crate::byo::CommandRuntime>,
}

impl Resolved {
    /// Whether the variant runs the user's program (a command or a prebuilt file) rather than
    /// one of our builds.
    pub fn is_users(&self) -> bool {
        self.command.is_some() || self.artifact.is_some()
    }
}

type Factory = fn() -> (Arc<dyn Runtime>, Build);

fn embedded(target: Target, pooling: bool, precompiled: bool) -> Arc<dyn Runtime> {
    let mut r = EmbeddedWasmtime::new(target);
    r.pooling = pooling;
    r.precompiled = precompiled;
    Arc::new(r)
}

fn wasi_http(mode: ExecMode, instance_reuse: usize, precompiled: bool) -> Arc<dyn Runtime> {
    Arc::new(EmbeddedWasiHttp {
        mode,
        instance_reuse,
        precompiled,
        ..EmbeddedWasiHttp::default()
    })
}

/// Requests per instance of the `-reuse` wasi:http variants.
const REUSE: usize = 1000;

const REGISTRY: &[(Known, Factory)] = &[
    (
        Known {
            name: "native",
            description: "the echo binary built for the host, as a process",
        },
        || (Arc::new(Native), Build::Echo(Target::Native)),
    ),
    (
        Known {
            name: "wasmtime-wasip2",
            description: "embedded Wasmtime: wasip2 component, Cranelift code cached as .cwasm, pooling",
        },
        || {
            (
                embedded(Target::Wasip2, true, true),
                Build::Echo(Target::Wasip2),
            )
        },
    ),
    (
        Known {
            name: "wasmtime-wasip1",
            description: "embedded Wasmtime: wasip1 module served a preopened listener, cached, pooling",
        },
        || {
            (
                embedded(Target::Wasip1, true, true),
                Build::Echo(Target::Wasip1),
            )
        },
    ),
    (
        Known {
            name: "wasmtime-wasip2-jit",
            description: "embedded Wasmtime: wasip2, compiled by Cranelift at every start",
        },
        || {
            (
                embedded(Target::Wasip2, true, false),
                Build::Echo(Target::Wasip2),
            )
        },
    ),
    (
        Known {
            name: "wasmtime-wasip2-nopool",
            description: "embedded Wasmtime: wasip2, on-demand instance allocator",
        },
        || {
            (
                embedded(Target::Wasip2, false, true),
                Build::Echo(Target::Wasip2),
            )
        },
    ),
    // The wasi:http variants differ from `wasi-http` in one setting each (compiler, cached
    // code, instance reuse), and the `-reuse` ones from each other only in the compiler.
    (
        Known {
            name: "wasi-http",
            description: "embedded wasi:http host: Cranelift at every start, instance per request, pooling",
        },
        || (wasi_http(ExecMode::CraneliftJit, 1, false), Build::EchoHttp),
    ),
    (
        Known {
            name: "wasi-http-wasmtime-pool",
            description: "as wasi-http, the pooling allocator with Wasmtime's defaults (madvise reset, no pagemap scan), as `wasmtime serve`",
        },
        || {
            let r = EmbeddedWasiHttp {
                pool: PoolTuning::WASMTIME_DEFAULTS,
                ..EmbeddedWasiHttp::default()
            };
            (Arc::new(r), Build::EchoHttp)
        },
    ),
    (
        Known {
            name: "wasi-http-p3",
            description: "as wasi-http-precompiled, the echo as a WASI 0.3 wasi:http/service component (async handle)",
        },
        || {
            (
                wasi_http(ExecMode::CraneliftJit, 1, true),
                Build::EchoHttpP3,
            )
        },
    ),
    (
        Known {
            name: "wasi-http-p3-reuse",
            description: "as wasi-http-p3, each instance answers up to 1000 requests, one at a time",
        },
        || {
            (
                wasi_http(ExecMode::CraneliftJit, REUSE, true),
                Build::EchoHttpP3,
            )
        },
    ),
    (
        Known {
            name: "wasi-http-precompiled",
            description: "as wasi-http, Cranelift code cached as .cwasm (no compile at start)",
        },
        || (wasi_http(ExecMode::CraneliftJit, 1, true), Build::EchoHttp),
    ),
    (
        Known {
            name: "wasi-http-winch",
            description: "as wasi-http, compiled by Winch (baseline compiler)",
        },
        || (wasi_http(ExecMode::Winch, 1, false), Build::EchoHttp),
    ),
    (
        Known {
            name: "wasi-http-pulley",
            description: "as wasi-http, on Pulley (interpreter)",
        },
        || (wasi_http(ExecMode::Pulley, 1, false), Build::EchoHttp),
    ),
    (
        Known {
            name: "wasi-http-reuse",
            description: "as wasi-http, each instance reused for up to 1000 requests",
        },
        || {
            (
                wasi_http(ExecMode::CraneliftJit, REUSE, false),
                Build::EchoHttp,
            )
        },
    ),
    (
        Known {
            name: "wasi-http-winch-reuse",
            description: "as wasi-http-reuse, compiled by Winch",
        },
        || (wasi_http(ExecMode::Winch, REUSE, false), Build::EchoHttp),
    ),
    (
        Known {
            name: "wasi-http-pulley-reuse",
            description: "as wasi-http-reuse, on Pulley (interpreter)",
        },
        || (wasi_http(ExecMode::Pulley, REUSE, false), Build::EchoHttp),
    ),
    (
        Known {
            name: "wasmtime-cli",
            description: "`wasmtime run -S inherit-network`, wasip2, Cranelift",
        },
        || {
            (
                Arc::new(WasmtimeCli::run(ExecMode::CraneliftJit)),
                Build::Echo(Target::Wasip2),
            )
        },
    ),
    (
        Known {
            name: "wasmtime-cli-winch",
            description: "`wasmtime run -C compiler=winch`, wasip2",
        },
        || {
            (
                Arc::new(WasmtimeCli::run(ExecMode::Winch)),
                Build::Echo(Target::Wasip2),
            )
        },
    ),
    (
        Known {
            name: "wasmtime-cli-pulley",
            description: "`wasmtime run --target pulley64` (interpreter), wasip2",
        },
        || {
            (
                Arc::new(WasmtimeCli::run(ExecMode::Pulley)),
                Build::Echo(Target::Wasip2),
            )
        },
    ),
    (
        Known {
            name: "wasmtime-cli-precompiled",
            description: "`wasmtime compile` then `wasmtime run --allow-precompiled`, wasip2",
        },
        || {
            (
                Arc::new(WasmtimeCli::run(ExecMode::Precompiled)),
                Build::Echo(Target::Wasip2),
            )
        },
    ),
    (
        Known {
            name: "wasmtime-cli-wasip1",
            description: "`wasmtime run --tcplisten`, wasip1 (removed in Wasmtime 48)",
        },
        || {
            (
                Arc::new(WasmtimeCli::run_wasip1()),
                Build::Echo(Target::Wasip1),
            )
        },
    ),
    (
        Known {
            name: "wasmtime-cli-serve",
            description: "`wasmtime serve` with the wasi:http/proxy component",
        },
        || {
            (
                Arc::new(WasmtimeCli::serve(ExecMode::CraneliftJit)),
                Build::EchoHttp,
            )
        },
    ),
    (
        Known {
            name: "wasmedge",
            description: "WasmEdge interpreter with the WasmEdge-socket build (the demo's runtime)",
        },
        || {
            (
                Arc::new(WasmEdgeCli::new(ExecMode::Interpreter)),
                Build::EchoWasmedge,
            )
        },
    ),
    (
        Known {
            name: "wasmedge-aot",
            description: "WasmEdge after `wasmedge compile` (AOT), WasmEdge-socket build",
        },
        || {
            (
                Arc::new(WasmEdgeCli::new(ExecMode::Aot)),
                Build::EchoWasmedge,
            )
        },
    ),
    (
        Known {
            name: "wasmer",
            description: "`wasmer run` (needs a WASIX build for sockets)",
        },
        || (Arc::new(WasmerCli::default()), Build::Echo(Target::Wasip1)),
    ),
];

/// Every variant name this build knows, in registry order.
pub fn known_variants() -> Vec<Known> {
    REGISTRY.iter().map(|(k, _)| *k).collect()
}

/// The variants that run a `.wasm` of kind `service`, in registry order.
pub fn variants_for(service: WasiService) -> Vec<&'static str> {
    REGISTRY
        .iter()
        .filter(|(_, factory)| factory().1.service() == Some(service))
        .map(|(k, _)| k.name)
        .collect()
}

/// Turns a spec into a runnable variant.
pub fn resolve(spec: &VariantSpec) -> Result<Resolved, CompareError> {
    if let Some(cmd) = &spec.command {
        let runtime = crate::byo::CommandRuntime::new(cmd)?;
        return Ok(Resolved {
            name: spec.name.clone(),
            runtime: Arc::new(runtime.clone()),
            build: Build::Command,
            target: Target::Native,
            env: spec.env.clone(),
            artifact: None,
            command: Some(runtime),
        });
    }
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
    let (runtime, mut build) = factory();
    if !spec.target.is_empty() {
        let target: Target = spec
            .target
            .parse()
            .map_err(|e: String| CompareError::Invalid(format!("variant {:?}: {e}", spec.name)))?;
        if let Build::Echo(_) = build {
            build = Build::Echo(target);
        }
    }
    Ok(Resolved {
        name: spec.name.clone(),
        runtime,
        build,
        target: build.target(),
        env: spec.env.clone(),
        artifact: spec.artifact.clone(),
        command: None,
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
        let r = resolve(&variant("wasi-http")).unwrap();
        assert_eq!(r.build, Build::EchoHttp);
        let e = resolve(&variant("v8")).unwrap_err().to_string();
        assert!(e.contains("v8") && e.contains("native"), "{e}");
        for k in known_variants() {
            resolve(&variant(k.name)).unwrap();
        }
    }
}
