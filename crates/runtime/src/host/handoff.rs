//! The hand-off from a launcher to the `wasmbench serve` child that runs an embedded host: one
//! typed value, written as JSON into one command-line argument and parsed back whole.

use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::host::http::WasiHttpConfig;
use crate::host::socket::EmbeddedConfig;

/// The `wasmbench serve` option that carries a [`HostConfig`], without its leading `--`.
pub const HOST_CONFIG_OPTION: &str = "host-config";

/// Everything one embedded host needs, as one value: the launcher builds it, hands it to the
/// `wasmbench serve` child ([`HostConfig::serve_args`]), and the child parses it back
/// ([`HostConfig::from_json`]) and runs that host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum HostConfig {
    /// The socket host ([`EmbeddedHost`](crate::host::socket::EmbeddedHost)): a wasip1 module
    /// or a wasip2 command.
    Socket(EmbeddedConfig),
    /// The `wasi:http` host ([`WasiHttpHost`](crate::host::http::WasiHttpHost)).
    WasiHttp(WasiHttpConfig),
}

impl HostConfig {
    /// The configuration as one line of JSON.
    pub fn to_json(&self) -> Result<String, RuntimeError> {
        serde_json::to_string(self).map_err(|e| {
            RuntimeError::Config(format!(
                "the host configuration cannot be written for `wasmbench serve`: {e}"
            ))
        })
    }

    /// Parses what [`HostConfig::to_json`] wrote. Every field is required and unknown ones are
    /// refused, so a setting is never silently replaced by a default; the error is one line.
    pub fn from_json(json: &str) -> Result<HostConfig, RuntimeError> {
        serde_json::from_str(json).map_err(|e| {
            // A value quoted in the message may contain line breaks; the message stays one line.
            let why = e.to_string().replace('\n', "\\n");
            RuntimeError::Config(format!("--{HOST_CONFIG_OPTION}: {why}"))
        })
    }

    /// The `wasmbench` arguments that run this host: `serve --host-config <JSON>`.
    //
    // One argument rather than a flag per setting, stdin or an environment variable: exec passes
    // it unchanged (no shell, no quoting, no per-setting parser to drift from the encoder), it is
    // visible whole in `ps`, no guest or grandchild inherits it, and nothing has to be written
    // to the child after it starts. Linux caps one argument at 128 KiB, far above any host
    // configuration.
    pub fn serve_args(&self) -> Result<Vec<String>, RuntimeError> {
        Ok(vec![
            "serve".into(),
            format!("--{HOST_CONFIG_OPTION}"),
            self.to_json()?,
        ])
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use wasmbench_vocab::{ExecMode, Target};

    use super::*;

    /// The arguments a launcher passes, and the configuration the child reads from them.
    fn hand_off(cfg: &HostConfig) -> HostConfig {
        let args = cfg.serve_args().unwrap();
        assert_eq!(args.len(), 3, "{args:?}");
        assert_eq!(args[..2], ["serve", "--host-config"]);
        HostConfig::from_json(&args[2]).unwrap()
    }

    #[test]
    fn serve_args_name_every_setting_of_the_socket_host() {
        let cfg = EmbeddedConfig {
            target: Target::Wasip1,
            wasm: "/x/echo one.wasm".into(),
            host: "::1".parse().unwrap(),
            port: 8080,
            env: vec![
                ("ECHO_MODE".into(), "seed".into()),
                ("QUOTED".into(), "a=b \"c\"\n--port 1".into()),
            ],
            max_memory_bytes: 1 << 20,
            epoch_deadline: Duration::from_micros(2500),
            pooling: false,
            precompiled: false,
            cache_dir: Some("/tmp/cwasm dir".into()),
            dirs: vec![crate::launch::Preopen::parse("/tmp::/data").unwrap()],
        };
        // Every setting differs from its default, so one the hand-off dropped or reset comes
        // back different. The pattern names every field: a new one must be added here.
        let default = EmbeddedConfig::new(Target::Wasip2, "");
        let EmbeddedConfig {
            target,
            wasm,
            host,
            port,
            env,
            max_memory_bytes,
            epoch_deadline,
            pooling,
            precompiled,
            cache_dir,
            dirs,
        } = &cfg;
        assert_ne!(*target, default.target);
        assert_ne!(*wasm, default.wasm);
        assert_ne!(*host, default.host);
        assert_ne!(*port, default.port);
        assert_ne!(*env, default.env);
        assert_ne!(*max_memory_bytes, default.max_memory_bytes);
        assert_ne!(*epoch_deadline, default.epoch_deadline);
        assert_ne!(*pooling, default.pooling);
        assert_ne!(*precompiled, default.precompiled);
        assert_ne!(*cache_dir, default.cache_dir);
        assert_ne!(*dirs, default.dirs);

        let sent = HostConfig::Socket(cfg);
        assert_eq!(hand_off(&sent), sent);
    }

    #[test]
    fn serve_args_name_every_setting_of_the_wasi_http_host() {
        let cfg = WasiHttpConfig {
            wasm: "/x/h.wasm".into(),
            host: "127.0.0.2".parse().unwrap(),
            port: 8080,
            pooling: false,
            max_memory_bytes: 1 << 20,
            mode: ExecMode::Winch,
            instance_reuse: 100,
            max_concurrent_requests: 10,
            worker_threads: 2,
            allow_outbound: vec![
                "127.0.0.1:9000".parse::<SocketAddr>().unwrap(),
                "[::1]:9001".parse().unwrap(),
            ],
            precompiled: true,
            cache_dir: Some("/tmp/cwasm dir".into()),
            env: vec![("GREETING".into(), "a=b \"c\"".into())],
            dirs: vec![crate::launch::Preopen::parse("/tmp").unwrap()],
            pool: crate::host::http::PoolTuning::WASMTIME_DEFAULTS,
        };
        let default = WasiHttpConfig::new("");
        let WasiHttpConfig {
            wasm,
            host,
            port,
            pooling,
            max_memory_bytes,
            mode,
            instance_reuse,
            max_concurrent_requests,
            worker_threads,
            allow_outbound,
            precompiled,
            cache_dir,
            env,
            dirs,
            pool,
        } = &cfg;
        assert_ne!(*pool, default.pool);
        assert_ne!(*wasm, default.wasm);
        assert_ne!(*host, default.host);
        assert_ne!(*port, default.port);
        assert_ne!(*pooling, default.pooling);
        assert_ne!(*max_memory_bytes, default.max_memory_bytes);
        assert_ne!(*mode, default.mode);
        assert_ne!(*instance_reuse, default.instance_reuse);
        assert_ne!(*max_concurrent_requests, default.max_concurrent_requests);
        assert_ne!(*worker_threads, default.worker_threads);
        assert_ne!(*allow_outbound, default.allow_outbound);
        assert_ne!(*precompiled, default.precompiled);
        assert_ne!(*cache_dir, default.cache_dir);
        assert_ne!(*env, default.env);
        assert_ne!(*dirs, default.dirs);

        let sent = HostConfig::WasiHttp(cfg);
        assert_eq!(hand_off(&sent), sent);
        // The defaults survive too (nothing is left out because it equals its default).
        let plain = HostConfig::WasiHttp(default);
        assert_eq!(hand_off(&plain), plain);
    }

    #[test]
    fn a_malformed_host_config_is_one_line_naming_the_option() {
        let good = HostConfig::Socket(EmbeddedConfig::new(Target::Wasip2, "/x/echo.wasm"))
            .to_json()
            .unwrap();
        let missing_port = good.replace("\"port\":0,", "");
        assert_ne!(missing_port, good);
        let unknown_field = good.replacen('{', "{\"ports\":1,", 1);
        let cases = [
            ("", "EOF"),
            ("{", "EOF"),
            ("not json", "expected"),
            ("{\"kind\":\"docker\"}", "unknown variant"),
            ("{\"kind\":\"line\\nbreak\"}", "unknown variant"),
            (r#"{"target":"wasip2"}"#, "missing field `kind`"),
            (missing_port.as_str(), "missing field `port`"),
            (unknown_field.as_str(), "unknown field `ports`"),
            (&good.replace("\"port\":0", "\"port\":70000"), "70000"),
        ];
        for (json, why) in cases {
            let e = HostConfig::from_json(json).unwrap_err();
            assert!(matches!(e, RuntimeError::Config(_)), "{json}: {e:?}");
            let e = e.to_string();
            assert!(
                e.contains("--host-config") && e.contains(why) && !e.contains('\n'),
                "{json}: {e}"
            );
        }
    }

    #[test]
    fn a_path_json_cannot_carry_is_refused_before_the_child_starts() {
        use std::os::unix::ffi::OsStrExt;
        let wasm = std::ffi::OsStr::from_bytes(b"/x/\xffecho.wasm");
        let cfg = HostConfig::Socket(EmbeddedConfig::new(Target::Wasip1, wasm));
        let e = cfg.serve_args().unwrap_err();
        assert!(matches!(e, RuntimeError::Config(_)), "{e:?}");
        assert!(e.to_string().contains("UTF-8"), "{e}");
    }
}
