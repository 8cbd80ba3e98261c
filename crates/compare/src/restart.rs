//! The restart design: every repeat starts each variant's server afresh and measures one run
//! of the whole duration; the variants' order rotates from one repeat to the next so no
//! variant always runs first (cold caches) or last.

use crate::config::{CompareConfig, PrecisionGoal};
use crate::launcher::Launcher;
use crate::outcome::{Event, LoopEnd, Options, RunOutcome, Status, VariantOutcome};
use crate::session;

/// Measures every running variant `cfg.repeats` times (more with a precision target).
pub(crate) async fn measure_all(
    cfg: &CompareConfig,
    opts: &Options,
    launcher: &dyn Launcher,
    variants: &mut [VariantOutcome],
    pinning: Option<&(Vec<usize>, Vec<usize>)>,
) -> LoopEnd {
    let mut end = LoopEnd::default();
    let started = std::time::Instant::now();
    let limits = |goal: &PrecisionGoal| (PrecisionGoal::MIN_REPEATS, goal.max_repeats);
    let mut repeat = 0u32;
    'repeats: loop {
        let goal = cfg.precision.as_ref().map(|g| (g, limits(g)));
        if let Some(record) =
            crate::precision::stop_before(goal, variants, repeat, cfg.repeats, started.elapsed())
        {
            end.precision = record;
            break;
        }
        if !variants.iter().any(|v| v.status == Status::Ok) {
            break;
        }
        let n = variants.len();
        for k in 0..n {
            let i = (k + repeat as usize) % n;
            if opts.cancel.is_cancelled() {
                end.partial = true;
                break 'repeats;
            }
            let v = &mut variants[i];
            if v.status != Status::Ok {
                continue;
            }
            match run_once(cfg, opts, launcher, v, repeat, pinning).await {
                Ok(run) => {
                    end.partial |= run.summary.partial;
                    (opts.on_event)(Event::RunDone {
                        variant: v.resolved.name.clone(),
                        repeat,
                        rps: run.summary.http_reqs_per_s(),
                    });
                    v.runs.push(run);
                }
                Err(_) if opts.cancel.is_cancelled() => {
                    end.partial = true;
                    break 'repeats;
                }
                Err(reason) => {
                    (opts.on_event)(Event::Failed {
                        variant: v.resolved.name.clone(),
                        reason: reason.clone(),
                    });
                    v.status = Status::Failed(reason);
                }
            }
        }
        repeat += 1;
    }
    if let (Some(goal), None) = (&cfg.precision, &end.precision) {
        end.precision = Some(crate::precision::cut_short(
            goal,
            limits(goal),
            variants,
            repeat,
            started.elapsed(),
            opts.cancel.is_cancelled(),
        ));
    }
    end.repeats = repeat;
    end
}

/// One repeat of `v`: cold starts, a fresh server, warm-up, the measured run and, when asked,
/// the capacity search on the same server.
async fn run_once(
    cfg: &CompareConfig,
    opts: &Options,
    launcher: &dyn Launcher,
    v: &mut VariantOutcome,
    repeat: u32,
    pinning: Option<&(Vec<usize>, Vec<usize>)>,
) -> Result<RunOutcome, String> {
    let server_cpus = pinning.map(|(s, _)| s);
    session::prime(cfg, opts, launcher, v, server_cpus, repeat).await?;
    session::phase(opts, v, repeat, "cold-start", None);
    let cold_start_ms =
        session::cold_starts(cfg, opts, launcher, v, server_cpus, cfg.cold_starts).await?;

    let mut server = session::start(cfg, opts, launcher, v, server_cpus).await?;
    let url = format!("{}{}", server.url(), cfg.load.path);
    if !cfg.warmup.is_zero() {
        session::phase(opts, v, repeat, "warm-up", Some(cfg.warmup));
    }
    session::warm_up(cfg, opts, server.as_ref(), &url).await?;

    let cpu_round_trip_ns = session::cpu_round_trip(pinning).await;
    session::phase(opts, v, repeat, "load", Some(cfg.load.duration));
    let window =
        session::measure(cfg, opts, server.as_mut(), &url, cfg.load.duration, true).await?;
    let capacity = match &opts.capacity {
        Some(options) if !opts.cancel.is_cancelled() => {
            session::phase(opts, v, repeat, "capacity", None);
            let plan = session::plan_for(cfg, url.clone(), cfg.load.duration)
                .map_err(|e| e.to_string())?;
            Some(session::capacity(opts, options, &plan, server.as_mut(), pinning).await?)
        }
        _ => None,
    };
    session::stop(server).await?;

    let raw_file = session::write_raw(opts, &v.resolved.name, repeat, &window.summary)?;
    Ok(RunOutcome {
        repeat,
        cold_start_ms,
        summary: window.summary,
        usage: window.usage,
        loadgen: window.loadgen,
        server_counts: window.server_counts,
        raw_file,
        capacity,
        cpu_round_trip_ns,
    })
}
