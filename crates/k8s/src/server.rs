//! One server a run deploys and loads: one of the project's [`Variant`]s, or an image the user
//! names (`k8s run --native-image IMG --wasm-image IMG[=RUNTIMECLASS]`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wasmbench_vocab::{ExecMode, Target};

use crate::Error;
use crate::image::Images;
use crate::variant::{ImageKind, Variant};

/// The RuntimeClass a `--wasm-image` without `=RUNTIMECLASS` runs under: the project's shim.
pub const DEFAULT_WASM_RUNTIME_CLASS: &str = "wasmbench";
/// The port a user's service listens on unless `--port` says otherwise.
pub const DEFAULT_PORT: u16 = 8080;
/// Image pull policies Kubernetes knows.
pub const PULL_POLICIES: [&str; 3] = ["IfNotPresent", "Always", "Never"];

/// A user's Wasm image and the RuntimeClass to run it under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmImage {
    /// Image reference.
    pub image: String,
    /// RuntimeClass name.
    pub runtime_class: String,
}

impl WasmImage {
    /// Parses `IMG[=RUNTIMECLASS]`; the class defaults to [`DEFAULT_WASM_RUNTIME_CLASS`].
    pub fn parse(s: &str) -> Result<WasmImage, Error> {
        let (image, rc) = match s.rsplit_once('=') {
            Some((i, rc)) => (i.trim(), rc.trim()),
            None => (s.trim(), DEFAULT_WASM_RUNTIME_CLASS),
        };
        if image.is_empty() || rc.is_empty() {
            return Err(Error::InvalidPlan(format!(
                "--wasm-image `{s}` must be IMAGE or IMAGE=RUNTIMECLASS, e.g. registry.example/app:1.0=wasmtime"
            )));
        }
        Ok(WasmImage {
            image: image.to_owned(),
            runtime_class: rc.to_owned(),
        })
    }
}

/// A user's service, as images (the contract of local bring-your-own: it listens on `PORT`,
/// on the address in `HOST`; ready when `GET <ready-path>` answers 200, or when its port
/// accepts a connection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnService {
    /// The native build's image, run under the node's default runtime.
    pub native_image: Option<String>,
    /// The Wasm builds, each under its RuntimeClass.
    pub wasm_images: Vec<WasmImage>,
    /// The port the service listens on.
    pub port: u16,
    /// The readiness path; `None` probes the port with a TCP connection.
    pub ready_path: Option<String>,
    /// Environment of every server container, after `PORT` and `HOST`.
    pub env: Vec<(String, String)>,
    /// The containers' `imagePullPolicy`.
    pub pull_policy: String,
}

impl Default for OwnService {
    fn default() -> Self {
        OwnService {
            native_image: None,
            wasm_images: Vec::new(),
            port: DEFAULT_PORT,
            ready_path: None,
            env: Vec::new(),
            pull_policy: "IfNotPresent".to_owned(),
        }
    }
}

impl OwnService {
    /// Checks what Kubernetes would otherwise refuse later, in one line each.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::InvalidPlan(m));
        if self.native_image.is_none() && self.wasm_images.is_empty() {
            return bad("name at least one image: --native-image IMG and/or --wasm-image IMG[=RUNTIMECLASS]".to_owned());
        }
        if self.port == 0 {
            return bad("--port must be 1-65535: the port the service listens on".to_owned());
        }
        if let Some(p) = self.ready_path.as_deref().filter(|p| !p.starts_with('/')) {
            return bad(format!(
                "--ready-path `{p}` must start with `/`, e.g. /healthz"
            ));
        }
        if !PULL_POLICIES.contains(&self.pull_policy.as_str()) {
            return bad(format!(
                "--image-pull-policy `{}` is not one of {}",
                self.pull_policy,
                PULL_POLICIES.join(", ")
            ));
        }
        for (k, _) in &self.env {
            let ok = !k.is_empty()
                && !k.starts_with(|c: char| c.is_ascii_digit())
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !ok {
                return bad(format!(
                    "--env name `{k}` is not a valid environment variable name: use letters, digits and `_`"
                ));
            }
        }
        for w in &self.wasm_images {
            if !dns_subdomain(&w.runtime_class) {
                return bad(format!(
                    "RuntimeClass `{}` (in --wasm-image {}={}) is not a valid name: use lowercase letters, digits, `-` and `.`",
                    w.runtime_class, w.image, w.runtime_class
                ));
            }
        }
        Ok(())
    }

    /// The servers: `native`, then `wasm-<runtimeclass>` per Wasm image (`-2`, `-3`… when a
    /// class runs more than one image), in the order given.
    pub fn servers(&self) -> Vec<Server> {
        let mut out = Vec::new();
        if let Some(image) = &self.native_image {
            out.push(self.server("native".to_owned(), image, None));
        }
        let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
        for w in &self.wasm_images {
            let n = seen.entry(w.runtime_class.as_str()).or_insert(0);
            *n += 1;
            let base = format!("wasm-{}", w.runtime_class.replace('.', "-"));
            let name = if *n == 1 { base } else { format!("{base}-{n}") };
            out.push(self.server(name, &w.image, Some(w.runtime_class.clone())));
        }
        out
    }

    fn server(&self, name: String, image: &str, runtime_class: Option<String>) -> Server {
        let mut env = vec![
            ("PORT".to_owned(), self.port.to_string()),
            ("HOST".to_owned(), "0.0.0.0".to_owned()),
        ];
        if runtime_class.is_some() {
            // Where wasi:http hosts (runwasi's shims, ours) serve a component.
            env.push((
                "WASMTIME_HTTP_PROXY_SOCKET_ADDR".to_owned(),
                format!("0.0.0.0:{}", self.port),
            ));
        }
        for (k, v) in &self.env {
            env.retain(|(e, _)| e != k);
            env.push((k.clone(), v.clone()));
        }
        Server {
            name,
            image: image.to_owned(),
            pull_policy: self.pull_policy.clone(),
            runtime_class,
            annotations: BTreeMap::new(),
            port: self.port,
            ready_path: self.ready_path.clone(),
            env,
            variant: None,
        }
    }
}

fn dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// One server of a run, everything its objects and its report line need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    /// The name in reports, labels and object names: a variant's name, `native` or
    /// `wasm-<runtimeclass>`.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// The container's `imagePullPolicy`.
    pub pull_policy: String,
    /// `runtimeClassName`; `None` runs under the node's default runtime.
    pub runtime_class: Option<String>,
    /// Pod annotations the runtime needs.
    pub annotations: BTreeMap<String, String>,
    /// The port the container listens on.
    pub port: u16,
    /// The readiness probe's path; `None` probes the port with a TCP connection.
    pub ready_path: Option<String>,
    /// The container's environment.
    pub env: Vec<(String, String)>,
    /// The project's variant this server is, `None` for a user's image.
    pub variant: Option<Variant>,
}

impl Server {
    /// The server of one of the project's variants.
    pub fn of_variant(v: Variant, images: &Images) -> Server {
        let port = v.container_port();
        let env = if v.uses_echo_env() {
            vec![
                ("PORT".to_owned(), port.to_string()),
                ("ECHO_HOST".to_owned(), "0.0.0.0".to_owned()),
            ]
        } else {
            Vec::new()
        };
        Server {
            name: v.name().to_owned(),
            image: images.reference(v.image_kind()),
            pull_policy: "IfNotPresent".to_owned(),
            runtime_class: v.runtime_class().map(str::to_owned),
            annotations: v.pod_annotations(),
            port,
            ready_path: Some("/healthz".to_owned()),
            env,
            variant: Some(v),
        }
    }

    /// The Deployment's and Service's name: `echo-<variant>` for the project's echo,
    /// `svc-<name>` for a user's service.
    pub fn object_name(&self) -> String {
        match self.variant {
            Some(_) => format!("echo-{}", self.name),
            None => format!("svc-{}", self.name),
        }
    }

    /// How the runtime runs the code, as far as known before the run: the variant's
    /// declaration, native for a user's native image, unreported for a user's Wasm image.
    pub fn exec_mode(&self) -> ExecMode {
        match (self.variant, &self.runtime_class) {
            (Some(v), _) => v.exec_mode(),
            (None, None) => ExecMode::Native,
            (None, Some(_)) => ExecMode::Unreported,
        }
    }

    /// What the image's code is built for, as far as known before the run.
    pub fn target(&self) -> Target {
        match (self.variant, &self.runtime_class) {
            (Some(v), _) => v.target(),
            (None, None) => Target::Native,
            (None, Some(_)) => Target::Wasm,
        }
    }

    /// The concurrency model of the project's echo in this server; `None` for a user's.
    pub fn workload_mode(&self) -> Option<&'static str> {
        match self.variant?.image_kind() {
            ImageKind::WasiHttp | ImageKind::WasiHttpP3 => Some(wasmbench_report::WASI_HTTP_MODE),
            _ => Some("concurrent"),
        }
    }
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasm_image_parses_with_and_without_a_class() {
        let w = WasmImage::parse("reg.local:5000/app:1=wasmtime").unwrap();
        assert_eq!(
            (w.image.as_str(), w.runtime_class.as_str()),
            ("reg.local:5000/app:1", "wasmtime")
        );
        let w = WasmImage::parse("app:1").unwrap();
        assert_eq!(w.runtime_class, DEFAULT_WASM_RUNTIME_CLASS);
        assert!(WasmImage::parse("app:1=").is_err());
        assert!(WasmImage::parse("=crun").is_err());
    }

    #[test]
    fn own_servers_are_named_by_class_and_take_the_contract_env() {
        let own = OwnService {
            native_image: Some("kv:1".into()),
            wasm_images: vec![
                WasmImage::parse("kv-wasm:1=wasmbench").unwrap(),
                WasmImage::parse("kv-wasm:2=wasmbench").unwrap(),
                WasmImage::parse("kv-wasm:1=spin.v2").unwrap(),
            ],
            port: 9000,
            env: vec![("HOST".into(), "::".into())],
            ..OwnService::default()
        };
        own.validate().unwrap();
        let s = own.servers();
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "native",
                "wasm-wasmbench",
                "wasm-wasmbench-2",
                "wasm-spin-v2"
            ]
        );
        assert_eq!(s[0].object_name(), "svc-native");
        assert_eq!(s[0].runtime_class, None);
        assert_eq!(s[3].runtime_class.as_deref(), Some("spin.v2"));
        assert!(s[0].env.contains(&("PORT".into(), "9000".into())));
        // The user's value replaces the contract's.
        assert!(s[0].env.contains(&("HOST".into(), "::".into())));
        assert!(!s[0].env.contains(&("HOST".into(), "0.0.0.0".into())));
        assert_eq!(
            (s[0].exec_mode(), s[1].exec_mode()),
            (ExecMode::Native, ExecMode::Unreported)
        );
        assert_eq!(
            (s[0].target(), s[1].target()),
            (Target::Native, Target::Wasm)
        );
        assert_eq!(s[1].workload_mode(), None);
    }

    #[test]
    fn bad_own_service_input_is_one_line_each() {
        let ok = OwnService {
            native_image: Some("kv:1".into()),
            ..OwnService::default()
        };
        for (own, needle) in [
            (OwnService::default(), "at least one image"),
            (
                OwnService {
                    port: 0,
                    ..ok.clone()
                },
                "--port",
            ),
            (
                OwnService {
                    ready_path: Some("healthz".into()),
                    ..ok.clone()
                },
                "--ready-path",
            ),
            (
                OwnService {
                    pull_policy: "Sometimes".into(),
                    ..ok.clone()
                },
                "--image-pull-policy",
            ),
            (
                OwnService {
                    env: vec![("A B".into(), "1".into())],
                    ..ok.clone()
                },
                "--env",
            ),
            (
                OwnService {
                    wasm_images: vec![WasmImage {
                        image: "x".into(),
                        runtime_class: "Bad_Class".into(),
                    }],
                    ..ok.clone()
                },
                "RuntimeClass `Bad_Class`",
            ),
        ] {
            let e = own.validate().unwrap_err().to_string();
            assert!(e.contains(needle) && !e.contains('\n'), "{e}");
        }
    }
}
