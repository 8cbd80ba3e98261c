//! Service configuration, read from the environment so every runtime (native process, embedded
//! Wasmtime, external Wasm CLIs, Kubernetes pods) configures the service the same way.

use std::time::Duration;

/// How the service treats connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// HTTP/1.1 keep-alive, many connections served concurrently by one event loop.
    Concurrent,
    /// Reproduces the public demo's server: one connection at a time, an HTTP/1.0-style reply,
    /// connection closed after every response.
    Seed,
}

impl Mode {
    /// The name used in `ECHO_MODE` and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Concurrent => "concurrent",
            Mode::Seed => "seed",
        }
    }
}

/// Everything the service can be told.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`ECHO_HOST`, default `0.0.0.0`).
    pub host: String,
    /// Port (`PORT`, default `1234`; `0` picks a free one, printed at start).
    pub port: u16,
    /// Connection handling (`ECHO_MODE`, `concurrent` or `seed`).
    pub mode: Mode,
    /// Largest accepted request body (`ECHO_MAX_BODY`, bytes, default 1 MiB); larger gets `413`.
    pub max_body_bytes: usize,
    /// Largest accepted request head (`ECHO_MAX_HEADER`, bytes, default 16 KiB); larger gets `431`.
    pub max_header_bytes: usize,
    /// A request head must arrive completely within this time (`ECHO_HEADER_TIMEOUT_MS`,
    /// default 10 s); protects against slowloris-style clients.
    pub header_timeout: Duration,
    /// An idle keep-alive connection is closed after this time (`ECHO_IDLE_TIMEOUT_MS`,
    /// default 60 s).
    pub idle_timeout: Duration,
    /// Serve a listener handed in by the runtime instead of opening one (`ECHO_LISTEN_FD`).
    /// `wasm32-wasip1` builds default to descriptor 3, as `wasmtime run --tcplisten` passes it.
    pub listen_fd: Option<i32>,
}

/// Default port of the demo's echo server.
pub const DEFAULT_PORT: u16 = 1234;

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "0.0.0.0".to_string(),
            port: DEFAULT_PORT,
            mode: Mode::Concurrent,
            max_body_bytes: crate::http::MAX_BODY_BYTES,
            max_header_bytes: 16 << 10,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            listen_fd: if cfg!(all(target_os = "wasi", target_env = "p1")) {
                Some(3)
            } else {
                None
            },
        }
    }
}

impl Config {
    /// Reads the configuration from environment variables; unknown values are an error that
    /// names the variable.
    pub fn from_env() -> Result<Config, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `lookup` (used by tests and by [`Config::from_env`]).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let mut c = Config::default();
        if let Some(v) = lookup("ECHO_HOST") {
            c.host = v;
        }
        if let Some(v) = lookup("PORT") {
            c.port = parse(&v, "PORT")?;
        }
        if let Some(v) = lookup("ECHO_MODE") {
            c.mode = match v.as_str() {
                "concurrent" | "" => Mode::Concurrent,
                "seed" => Mode::Seed,
                other => {
                    return Err(format!(
                        "ECHO_MODE={other:?} is not a mode: use `concurrent` or `seed`"
                    ));
                }
            };
        }
        if let Some(v) = lookup("ECHO_MAX_BODY") {
            c.max_body_bytes = parse(&v, "ECHO_MAX_BODY")?;
        }
        if let Some(v) = lookup("ECHO_MAX_HEADER") {
            c.max_header_bytes = parse(&v, "ECHO_MAX_HEADER")?;
        }
        if let Some(v) = lookup("ECHO_HEADER_TIMEOUT_MS") {
            c.header_timeout = Duration::from_millis(parse(&v, "ECHO_HEADER_TIMEOUT_MS")?);
        }
        if let Some(v) = lookup("ECHO_IDLE_TIMEOUT_MS") {
            c.idle_timeout = Duration::from_millis(parse(&v, "ECHO_IDLE_TIMEOUT_MS")?);
        }
        if let Some(v) = lookup("ECHO_LISTEN_FD") {
            c.listen_fd = if v.is_empty() || v == "none" {
                None
            } else {
                Some(parse(&v, "ECHO_LISTEN_FD")?)
            };
        }
        Ok(c)
    }
}

fn parse<T: std::str::FromStr>(v: &str, name: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{name}={v:?} is not a valid number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_demo() {
        let c = Config::from_lookup(|_| None).unwrap();
        assert_eq!(c.port, 1234);
        assert_eq!(c.host, "0.0.0.0");
        assert_eq!(c.mode, Mode::Concurrent);
        assert_eq!(c.max_body_bytes, 1 << 20);
    }

    #[test]
    fn reads_and_rejects_values() {
        let c = Config::from_lookup(|k| match k {
            "PORT" => Some("8080".into()),
            "ECHO_MODE" => Some("seed".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.mode, Mode::Seed);
        let e = Config::from_lookup(|k| (k == "PORT").then(|| "http".into())).unwrap_err();
        assert!(e.contains("PORT"), "{e}");
        let e = Config::from_lookup(|k| (k == "ECHO_MODE").then(|| "fast".into())).unwrap_err();
        assert!(e.contains("seed"), "{e}");
    }
}
