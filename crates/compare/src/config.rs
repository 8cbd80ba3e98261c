//! What a comparison runs: variants, load plan, repeats, warm-up, pinning. Built from defaults
//! (which mirror the public demo), an optional `wasmbench.toml`, then command-line overrides.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::CompareError;

pub use wasmbench_vocab::{ConnectionMode, Design};

/// Named setups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Keep-alive, concurrent server.
    #[default]
    Default,
    /// The demo's setup: `ECHO_MODE=seed` (one connection at a time, HTTP/1.0 reply, close)
    /// and a new connection per request.
    Seed,
}

/// The load each variant receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadSettings {
    /// Executor: `constant-vus` (closed model, the demo's) or `constant-arrival-rate` (open).
    pub executor: String,
    /// Virtual users (closed model) or pre-allocated VUs (open model).
    pub vus: u32,
    /// Iterations per second for `constant-arrival-rate`.
    pub rate: Option<u32>,
    /// Measured duration of one run.
    #[serde(with = "wasmbench_vocab::duration::serde")]
    pub duration: Duration,
    /// Connection reuse.
    pub connection: ConnectionMode,
    /// HTTP method.
    pub method: String,
    /// Request path (and query).
    pub path: String,
    /// Request body.
    pub body: String,
    /// Extra request headers, `Name: value`.
    pub headers: Vec<String>,
    /// k6-style checks, e.g. `status == 200`, `duration < 200`.
    pub checks: Vec<String>,
    /// k6-style thresholds, `metric: expression`.
    pub thresholds: Vec<String>,
    /// Per-request timeout.
    #[serde(with = "wasmbench_vocab::duration::serde")]
    pub timeout: Duration,
    /// A request mix (`[[load.mix]]` tables: name, weight, method, path, body): when given,
    /// each iteration sends one of these in proportion to its weight instead of method/path/body,
    /// and the report breaks throughput and latency down per request.
    pub mix: Vec<wasmbench_load::MixRequest>,
}

impl Default for LoadSettings {
    fn default() -> Self {
        LoadSettings {
            executor: "constant-vus".into(),
            vus: wasmbench_vocab::demo::VUS,
            rate: None,
            duration: wasmbench_vocab::demo::DURATION,
            connection: ConnectionMode::KeepAlive,
            method: "GET".into(),
            path: "/".into(),
            body: String::new(),
            headers: Vec::new(),
            checks: wasmbench_vocab::demo::CHECKS.map(String::from).to_vec(),
            thresholds: Vec::new(),
            timeout: Duration::from_secs(60),
            mix: Vec::new(),
        }
    }
}

/// One thing to compare: a runtime running a build of a workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    /// Name in reports; also the registry key when `runtime` is empty.
    pub name: String,
    /// Runtime key (`native`, `wasmtime`, `wasmtime-cli`, ...); defaults from the name.
    #[serde(default)]
    pub runtime: String,
    /// Build target (`native`, `wasip1`, `wasip2`, `wasi-http`); defaults from the name.
    #[serde(default)]
    pub target: String,
    /// Extra environment for the server.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// A prebuilt workload to use instead of building ours (`.wasm` or native binary).
    #[serde(default)]
    pub artifact: Option<PathBuf>,
    /// A native command line to run instead of an artifact; `{port}` is replaced by the port.
    #[serde(default)]
    pub command: Option<String>,
}

/// How server and load generator share the CPUs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Pinning {
    /// Server on the last CPU, load generator on the others, when there are at least 2.
    #[default]
    Auto,
    /// No pinning.
    Off,
    /// Explicit CPU lists.
    Cpus {
        /// CPUs for the server process.
        server: Vec<usize>,
        /// CPUs for the load generator.
        load: Vec<usize>,
    },
}

impl Pinning {
    /// Resolves to concrete CPU lists for a machine with `cpus` CPUs (`None` = no pinning).
    pub fn resolve(&self, cpus: usize) -> Option<(Vec<usize>, Vec<usize>)> {
        match self {
            Pinning::Off => None,
            Pinning::Auto if cpus < 2 => None,
            Pinning::Auto => Some((vec![cpus - 1], (0..cpus - 1).collect())),
            Pinning::Cpus { server, load } => Some((server.clone(), load.clone())),
        }
    }
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompareConfig {
    /// Workload name recorded in reports.
    pub workload: String,
    /// Variants in the order given; the first is the baseline.
    pub variants: Vec<VariantSpec>,
    /// The load plan.
    pub load: LoadSettings,
    /// Measured runs per variant.
    pub repeats: u32,
    /// Load applied before each measured run and discarded.
    #[serde(with = "wasmbench_vocab::duration::serde")]
    pub warmup: Duration,
    /// Cold starts measured per repeat.
    pub cold_starts: u32,
    /// CPU pinning.
    pub pinning: Pinning,
    /// Named setup.
    pub profile: Profile,
    /// How long a server may take to become ready.
    #[serde(with = "wasmbench_vocab::duration::serde")]
    pub startup_timeout: Duration,
    /// Path used for readiness and cold-start probes; unset: see
    /// [`CompareConfig::effective_ready_path`].
    pub ready_path: Option<String>,
    /// Run the variants that can run here and skip the others (what `--variants all` asks
    /// for); otherwise a variant whose runtime is missing stops the comparison before anything
    /// runs.
    pub skip_unavailable: bool,
    /// Host directories every Wasm guest may open, `HOST[::GUEST]` (`--dir`); native
    /// servers see the file system anyway.
    pub dirs: Vec<wasmbench_runtime::Preopen>,
    /// Keep adding repeats until the headline ratios are this precise (`--precision`);
    /// `repeats` is then the least number of repeats.
    pub precision: Option<PrecisionGoal>,
    /// How the measured load is scheduled across the variants (`--design`).
    pub design: Design,
    /// Every variant's server limited to this many CPUs' worth of time (`--server-cpu-limit`),
    /// as a Kubernetes pod's CPU limit: for a server faster than one client core can drive.
    pub server_cpu_limit: Option<f64>,
    /// The length of one measured block of the interleaved design (`--block`); a repeat is
    /// `load.duration` of load per variant, measured in as many blocks as fit.
    #[serde(with = "wasmbench_vocab::duration::serde")]
    pub block: Duration,
}

/// A precision target for the headline ratios (throughput, p95 time to first byte, CPU per
/// request of every variant against the baseline).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrecisionGoal {
    /// Largest allowed distance from a ratio to either bound of its 95% interval, as a share
    /// of the ratio (0.05 for ±5%).
    pub target: f64,
    /// Time the measured repeats may take; no repeat starts that would not end within it.
    #[serde(
        with = "wasmbench_vocab::duration::serde",
        default = "PrecisionGoal::default_max_time"
    )]
    pub max_time: Duration,
    /// Most repeats per variant.
    #[serde(default = "PrecisionGoal::default_max_repeats")]
    pub max_repeats: u32,
}

impl PrecisionGoal {
    /// The fewest repeats a ratio interval is computed from when precision is the goal: the
    /// bootstrap's interval is too narrow on fewer.
    pub const MIN_REPEATS: u32 = 5;

    fn default_max_time() -> Duration {
        Duration::from_secs(600)
    }

    fn default_max_repeats() -> u32 {
        40
    }

    /// A goal of `target` with the default budget.
    pub fn new(target: f64) -> PrecisionGoal {
        PrecisionGoal {
            target,
            max_time: Self::default_max_time(),
            max_repeats: Self::default_max_repeats(),
        }
    }
}

impl Default for CompareConfig {
    fn default() -> Self {
        CompareConfig {
            workload: "echo".into(),
            variants: vec![variant("native"), variant("wasmtime-wasip2")],
            load: LoadSettings::default(),
            repeats: 3,
            warmup: Duration::from_secs(5),
            cold_starts: 5,
            pinning: Pinning::Auto,
            profile: Profile::Default,
            startup_timeout: Duration::from_secs(60),
            ready_path: None,
            skip_unavailable: false,
            dirs: Vec::new(),
            precision: None,
            design: Design::default(),
            server_cpu_limit: None,
            block: Self::DEFAULT_BLOCK,
        }
    }
}

/// A variant known by name.
pub fn variant(name: &str) -> VariantSpec {
    VariantSpec {
        name: name.into(),
        runtime: String::new(),
        target: String::new(),
        env: Vec::new(),
        artifact: None,
        command: None,
    }
}

impl CompareConfig {
    /// The default block of the interleaved design: long enough that connecting and the VUs'
    /// start are a small share of it, short enough that a round's blocks see the same machine.
    pub const DEFAULT_BLOCK: Duration = Duration::from_secs(2);

    /// Measured rounds per repeat: in the interleaved design, the blocks that fit in
    /// `load.duration` (at least one); in the duet design, as many times more as there are
    /// variants, since a duet round measures every variant at once, so both designs measure
    /// for the same wall time; 1 in the restart design, where a repeat is one run.
    pub fn rounds_per_repeat(&self) -> u32 {
        let blocks = || {
            let b = self.load.duration.as_secs_f64() / self.block.as_secs_f64();
            (b.round() as u32).max(1)
        };
        match self.design {
            Design::Restart => 1,
            Design::Interleaved => blocks(),
            Design::Duet => blocks() * u32::try_from(self.variants.len().max(1)).unwrap_or(1),
        }
    }

    /// How long one measured run lasts: a block in the interleaved design, the whole
    /// `load.duration` in the restart design.
    pub fn measured_run(&self) -> Duration {
        match self.design {
            Design::Restart => self.load.duration,
            Design::Interleaved | Design::Duet => self.block.min(self.load.duration),
        }
    }

    /// The `--quick` preset: a few seconds per variant.
    pub fn quick(mut self) -> Self {
        self.load.duration = Duration::from_secs(3);
        self.warmup = Duration::from_secs(1);
        self.repeats = 2;
        self.cold_starts = 3;
        self.block = Duration::from_secs(1);
        self
    }

    /// Applies a named profile.
    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        if profile == Profile::Seed {
            self.load.connection = ConnectionMode::NewConnectionPerRequest;
            for v in &mut self.variants {
                if !v.env.iter().any(|(k, _)| k == "ECHO_MODE") {
                    v.env.push(("ECHO_MODE".into(), "seed".into()));
                }
            }
        }
        self
    }

    /// The path probed for readiness and cold starts: the configured one; else `/healthz` for
    /// our workload, and for the user's own builds an empty path, meaning "the port accepts a
    /// TCP connection" (their service may have no health endpoint).
    pub fn effective_ready_path(&self) -> String {
        match &self.ready_path {
            Some(p) => p.clone(),
            None if self
                .variants
                .iter()
                .all(|v| v.command.is_some() || v.artifact.is_some()) =>
            {
                String::new()
            }
            None => "/healthz".into(),
        }
    }

    /// Reads a `wasmbench.toml`; errors name the file and the problem.
    pub fn from_file(path: &Path) -> Result<CompareConfig, CompareError> {
        let text = std::fs::read_to_string(path).map_err(|e| CompareError::Config {
            path: path.to_path_buf(),
            problem: format!("cannot read it: {e}"),
        })?;
        Self::from_toml(&text).map_err(|problem| CompareError::Config {
            path: path.to_path_buf(),
            problem,
        })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<CompareConfig, String> {
        let cfg: CompareConfig =
            toml::from_str(text).map_err(|e| wasmbench_load::toml_line(&e, text))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.variants.is_empty() {
            return Err(
                "no variants: list at least one, e.g. variants = [{ name = \"native\" }]".into(),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for v in &self.variants {
            if !seen.insert(v.name.as_str()) {
                return Err(format!("variant {:?} is listed twice", v.name));
            }
        }
        if self.repeats == 0 {
            return Err("repeats must be at least 1".into());
        }
        if let Some(p) = &self.precision {
            if !(p.target > 0.0 && p.target < 1.0) {
                return Err("precision.target must be between 0 and 1 (0.05 for ±5%)".into());
            }
            if p.max_repeats < self.repeats.max(2) {
                return Err(format!(
                    "precision.max_repeats ({}) must be at least repeats ({}) and 2",
                    p.max_repeats, self.repeats
                ));
            }
            if p.max_time.is_zero() {
                return Err("precision.max_time must be longer than 0s".into());
            }
        }
        if self.load.duration.is_zero() {
            return Err("load.duration must be longer than 0s".into());
        }
        if self
            .server_cpu_limit
            .is_some_and(|c| !(c.is_finite() && c >= 0.01))
        {
            return Err("server_cpu_limit must be at least 0.01 (CPUs)".into());
        }
        if self.block < Duration::from_millis(200) {
            return Err(
                "block must be at least 200ms: shorter blocks measure connecting more than serving"
                    .into(),
            );
        }
        if self.load.vus == 0 {
            return Err("load.vus must be at least 1".into());
        }
        let ready_ok = self
            .ready_path
            .as_deref()
            .is_none_or(|p| p.starts_with('/'));
        if !ready_ok || !self.load.path.starts_with('/') {
            return Err("paths must start with '/'".into());
        }
        if !self.load.mix.is_empty() {
            let plan = wasmbench_load::Plan {
                mix: self.load.mix.clone(),
                ..wasmbench_load::Plan::default()
            };
            plan.validate().map_err(|e| format!("load.mix: {e}"))?;
        }
        match self.load.executor.as_str() {
            "constant-vus" => {}
            "constant-arrival-rate" if self.load.rate.is_some_and(|r| r > 0) => {}
            "constant-arrival-rate" => {
                return Err("executor constant-arrival-rate needs load.rate > 0".into());
            }
            other => {
                return Err(format!(
                    "unknown executor {other:?}: use constant-vus or constant-arrival-rate"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_mirror_the_demo() {
        let c = CompareConfig::default();
        assert_eq!(c.load.vus, 100);
        assert_eq!(c.load.duration, Duration::from_secs(30));
        assert_eq!(c.load.checks, ["status == 200", "duration < 200"]);
        assert_eq!(c.variants[0].name, "native");
        c.validate().unwrap();
    }

    #[test]
    fn ready_path_defaults_to_healthz_for_ours_and_tcp_for_user_builds() {
        let mut c = CompareConfig::default();
        assert_eq!(c.effective_ready_path(), "/healthz");
        crate::byo::apply(&mut c, Some("/bin/true --port {port}"), None, &[]).unwrap();
        assert_eq!(
            c.effective_ready_path(),
            "",
            "a user service may have no health path"
        );
        c.ready_path = Some("/up".into());
        assert_eq!(c.effective_ready_path(), "/up");
        c.ready_path = Some("up".into());
        assert!(c.validate().is_err());
    }

    #[test]
    fn toml_round_trip_and_errors() {
        let c = CompareConfig::from_toml(
            r#"
            repeats = 5
            warmup = "2s"
            [load]
            vus = 10
            duration = "4s"
            connection = "close"
            [[variants]]
            name = "native"
            [[variants]]
            name = "wasmtime-wasip1"
            "#,
        )
        .unwrap();
        assert_eq!(c.repeats, 5);
        assert_eq!(c.load.connection, ConnectionMode::NewConnectionPerRequest);
        assert_eq!(c.variants.len(), 2);
        let e = CompareConfig::from_toml("repeats = \"many\"").unwrap_err();
        assert!(e.contains("repeats"), "{e}");
        let e = CompareConfig::from_toml("colour = 1").unwrap_err();
        assert!(e.contains("colour"), "{e}");
        let e = CompareConfig::from_toml("[load]\nexecutor = \"spiky\"").unwrap_err();
        assert!(e.contains("spiky"), "{e}");
    }

    #[test]
    fn seed_profile_and_pinning() {
        let c = CompareConfig::default().with_profile(Profile::Seed);
        assert_eq!(c.load.connection, ConnectionMode::NewConnectionPerRequest);
        assert!(
            c.variants
                .iter()
                .all(|v| v.env.contains(&("ECHO_MODE".into(), "seed".into())))
        );
        assert_eq!(Pinning::Auto.resolve(2), Some((vec![1], vec![0])));
        assert_eq!(Pinning::Auto.resolve(1), None);
        assert_eq!(Pinning::Off.resolve(8), None);
    }
}
