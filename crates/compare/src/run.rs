//! The comparison: check and build every variant, measure them in the configured design
//! ([`crate::interleaved`] or [`crate::restart`]), count instructions under callgrind when
//! asked, and assemble the report.

use std::collections::BTreeMap;

use wasmbench_runtime::{Artifact, RuntimeError};

use crate::config::{CompareConfig, Design};
use crate::error::CompareError;
use crate::launcher::{Launcher, RuntimeLauncher};
use crate::outcome::{CallgrindPass, Event, Options, Outcome, Status, VariantOutcome};
use crate::session::plan_for;
use crate::variants::{Build, resolve};

/// Runs the comparison and returns the result every report renders.
pub async fn run(
    cfg: &CompareConfig,
    opts: &Options,
) -> Result<wasmbench_report::Comparison, CompareError> {
    run_with(cfg, opts, &RuntimeLauncher).await
}

/// [`run`], with the variants' servers started by `launcher`.
pub(crate) async fn run_with(
    cfg: &CompareConfig,
    opts: &Options,
    launcher: &dyn Launcher,
) -> Result<wasmbench_report::Comparison, CompareError> {
    cfg.validate().map_err(CompareError::Invalid)?;
    let started_at = chrono::Utc::now();
    let environment = crate::environment::detect();
    let pinning = cfg.pinning.resolve(environment.cpu_count as usize);
    // Reject a bad plan before building anything; the report states this plan (only the
    // server's address differs between runs).
    let load_plan = plan_for(
        cfg,
        format!("http://127.0.0.1:1{}", cfg.load.path),
        cfg.measured_run(),
    )?;
    load_plan.validate()?;

    let mut variants = Vec::new();
    for spec in &cfg.variants {
        variants.push(VariantOutcome {
            resolved: resolve(spec)?,
            artifact: None,
            compile_ms: None,
            host_report: None,
            launch_details: Default::default(),
            primed: false,
            started: false,
            status: Status::Ok,
            runs: Vec::new(),
            callgrind: None,
        });
    }

    // Everything that can be known before a server starts is checked for every variant
    // first, so a wrong runtime or module fails in a moment, not after the others ran.
    for v in &mut variants {
        if let Err(reason) = launcher.available(&v.resolved) {
            if !cfg.skip_unavailable {
                // The flag the user named the runtime with: --wasm-runtime for their .wasm.
                let flag = if v.resolved.is_users() && v.resolved.target.is_wasm() {
                    "--wasm-runtime"
                } else {
                    "--variants"
                };
                return Err(CompareError::Runtime(RuntimeError::Unavailable {
                    runtime: v.resolved.name.clone(),
                    reason: format!(
                        "{reason}; leave it out of {flag}, or pass `{flag} all` to run \
                         whatever can run here"
                    ),
                }));
            }
            (opts.on_event)(Event::Skipped {
                variant: v.resolved.name.clone(),
                reason: reason.clone(),
            });
            v.status = Status::Skipped(reason);
            continue;
        }
        crate::preflight::check_loadable(&v.resolved)?;
    }

    let mut built: BTreeMap<Build, Artifact> = BTreeMap::new();
    for v in &mut variants {
        let name = v.resolved.name.clone();
        if v.status != Status::Ok {
            continue;
        }
        (opts.on_event)(Event::Building {
            variant: name.clone(),
        });
        let build = v.resolved.build;
        let artifact = match (&v.resolved.artifact, build) {
            (Some(path), _) => Artifact::from_path(v.resolved.target, path),
            (None, Build::Command) => match &v.resolved.command {
                Some(c) => c.artifact(),
                None => Err(wasmbench_runtime::RuntimeError::Config(
                    "command variant without a command".into(),
                )),
            },
            (None, _) => match built.get(&build) {
                Some(a) => Ok(a.clone()),
                None => {
                    let opts_build = opts.build.clone();
                    let a = tokio::task::spawn_blocking(move || build.build(&opts_build))
                        .await
                        .map_err(|e| CompareError::Invalid(format!("build task failed: {e}")))?;
                    if let Ok(a) = &a {
                        built.insert(build, a.clone());
                    }
                    a
                }
            },
        };
        match artifact {
            Ok(a) => v.artifact = Some(a),
            Err(e) => {
                // A user-supplied file that is unusable is a usage error, not a variant failure.
                if v.resolved.artifact.is_some() {
                    return Err(e.into());
                }
                let reason = e.to_string();
                (opts.on_event)(Event::Failed {
                    variant: name,
                    reason: reason.clone(),
                });
                v.status = Status::Failed(reason);
            }
        }
    }

    if let Some(dir) = &opts.raw_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| CompareError::Invalid(format!("cannot create {}: {e}", dir.display())))?;
    }

    let end = match cfg.design {
        Design::Interleaved | Design::Duet => {
            crate::interleaved::measure_all(cfg, opts, launcher, &mut variants, pinning.as_ref())
                .await
        }
        Design::Restart => {
            crate::restart::measure_all(cfg, opts, launcher, &mut variants, pinning.as_ref()).await
        }
    };
    let partial = end.partial || opts.cancel.is_cancelled();
    let mut warnings = Vec::new();
    let callgrind = match opts.callgrind {
        CallgrindPass::Off => false,
        CallgrindPass::WhenCheap => {
            !variants.iter().any(|v| v.resolved.is_users())
                && crate::callgrind::valgrind_version().is_ok()
        }
        CallgrindPass::Always => true,
    };
    if callgrind && !partial {
        let server_cpus = pinning.as_ref().map(|(s, _)| s);
        for v in variants
            .iter_mut()
            .filter(|v| v.status == Status::Ok && !v.runs.is_empty())
        {
            (opts.on_event)(Event::Phase {
                variant: v.resolved.name.clone(),
                repeat: cfg.repeats,
                phase: "callgrind",
                duration: None,
            });
            match crate::callgrind::count(cfg, opts, launcher, v, server_cpus).await {
                Ok(c) => v.callgrind = Some(c),
                Err(e) => warnings.push(format!(
                    "{}: instructions per request not counted under callgrind: {e}",
                    v.resolved.name
                )),
            }
        }
    }

    let outcome = Outcome {
        variants,
        load_plan,
        environment,
        pinning,
        started_at,
        ended_at: chrono::Utc::now(),
        partial,
        warnings,
        repeats: end.repeats,
        precision: end.precision,
    };
    Ok(crate::report::build(cfg, opts, outcome))
}

#[cfg(test)]
mod loop_tests;
