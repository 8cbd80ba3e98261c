//! The interleaved design: each variant's server starts once, is warmed up and stays up; the
//! load is then measured in short blocks, one per variant per round, in a shuffled order each
//! round. Every block is a run of its own whose `repeat` is its round, so each ratio's interval
//! is paired by round (`wasmbench_report::round_ratio_interval`): whatever moves the machine
//! (its clock, a neighbour's load) moves both blocks of a round alike and cancels in their
//! ratio, where restarting every server each repeat draws a new state each time. Cold starts
//! are measured first, on processes of their own.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::config::{CompareConfig, Design, PrecisionGoal};
use crate::launcher::{Launcher, ServerHandle};
use crate::outcome::{Event, LoopEnd, Options, RunOutcome, Status, VariantOutcome};
use crate::session;

/// The fewest rounds a precision target is checked after: the paired bootstrap's interval is
/// too narrow on fewer pairs.
pub(crate) const MIN_ROUNDS: u32 = 10;

/// A variant's server, up for the whole measurement.
struct Live {
    server: Box<dyn ServerHandle>,
    url: String,
    /// Cold starts measured before it started; they go with the variant's first block.
    cold_start_ms: Vec<f64>,
}

/// Measures every running variant in `cfg.repeats × cfg.rounds_per_repeat()` rounds of one
/// block each (more with a precision target), then runs the capacity searches, if asked, on
/// the same servers.
pub(crate) async fn measure_all(
    cfg: &CompareConfig,
    opts: &Options,
    launcher: &dyn Launcher,
    variants: &mut [VariantOutcome],
    pinning: Option<&(Vec<usize>, Vec<usize>)>,
) -> LoopEnd {
    let mut end = LoopEnd::default();
    let mut live: Vec<Option<Live>> = variants.iter().map(|_| None).collect();
    for (i, v) in variants.iter_mut().enumerate() {
        if v.status != Status::Ok {
            continue;
        }
        if opts.cancel.is_cancelled() {
            end.partial = true;
            break;
        }
        match set_up(cfg, opts, launcher, v, pinning).await {
            Ok(l) => live[i] = Some(l),
            Err(_) if opts.cancel.is_cancelled() => end.partial = true,
            Err(reason) => fail(opts, v, reason),
        }
    }
    if !end.partial {
        rounds(cfg, opts, variants, &mut live, pinning, &mut end).await;
    }
    if !end.partial && opts.capacity.is_some() {
        capacities(cfg, opts, variants, &mut live, pinning, end.repeats).await;
    }
    for (v, l) in variants.iter_mut().zip(live) {
        if let Some(l) = l
            && let Err(reason) = session::stop(l.server).await
            && v.status == Status::Ok
        {
            fail(opts, v, format!("the server did not stop: {reason}"));
        }
    }
    if opts.cancel.is_cancelled() {
        end.partial = true;
    }
    end
}

/// Compile (Wasm), cold starts, then the server that stays up, warmed up.
async fn set_up(
    cfg: &CompareConfig,
    opts: &Options,
    launcher: &dyn Launcher,
    v: &mut VariantOutcome,
    pinning: Option<&(Vec<usize>, Vec<usize>)>,
) -> Result<Live, String> {
    let server_cpus = pinning.map(|(s, _)| s);
    session::prime(cfg, opts, launcher, v, server_cpus, 0).await?;
    session::phase(opts, v, 0, "cold-start", None);
    // As many samples as the restart design takes over its repeats.
    let count = cfg.cold_starts.saturating_mul(cfg.repeats);
    let cold_start_ms = session::cold_starts(cfg, opts, launcher, v, server_cpus, count).await?;
    let server = session::start(cfg, opts, launcher, v, server_cpus).await?;
    let url = format!("{}{}", server.url(), cfg.load.path);
    if !cfg.warmup.is_zero() {
        session::phase(opts, v, 0, "warm-up", Some(cfg.warmup));
    }
    session::warm_up(cfg, opts, server.as_ref(), &url).await?;
    Ok(Live {
        server,
        url,
        cold_start_ms,
    })
}

/// The measured rounds; `end.repeats` is set to the rounds started.
async fn rounds(
    cfg: &CompareConfig,
    opts: &Options,
    variants: &mut [VariantOutcome],
    live: &mut [Option<Live>],
    pinning: Option<&(Vec<usize>, Vec<usize>)>,
    end: &mut LoopEnd,
) {
    let per_repeat = cfg.rounds_per_repeat();
    let planned = cfg.repeats.saturating_mul(per_repeat);
    let block = cfg.measured_run();
    let limits = |goal: &PrecisionGoal| {
        (
            MIN_ROUNDS,
            goal.max_repeats.saturating_mul(per_repeat).max(2),
        )
    };
    if live.iter().any(Option::is_some) {
        (opts.on_event)(Event::Measuring {
            rounds: planned,
            block,
        });
    }
    // A fresh order every round, different between comparisons: a schedule that repeats could
    // line up with something periodic on the machine.
    let mut rng = rand::rngs::StdRng::seed_from_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    let started = Instant::now();
    let mut round = 0u32;
    'rounds: loop {
        let goal = cfg.precision.as_ref().map(|g| (g, limits(g)));
        if let Some(record) =
            crate::precision::stop_before(goal, variants, round, planned, started.elapsed())
        {
            end.precision = record;
            break;
        }
        let mut order: Vec<usize> = (0..variants.len())
            .filter(|&i| variants[i].status == Status::Ok && live[i].is_some())
            .collect();
        if order.is_empty() {
            break;
        }
        order.shuffle(&mut rng);
        let cpu_round_trip_ns = session::cpu_round_trip(pinning).await;
        let mut rps = Vec::new();
        let results: Vec<(usize, Result<RunOutcome, String>)> = if cfg.design == Design::Duet {
            // Every block of the round at once: each future holds its own server.
            let blocks = live
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| order.contains(i))
                .filter_map(|(i, l)| Some((i, l.as_mut()?)))
                .map(|(i, l)| {
                    let v = &variants[i];
                    async move {
                        let r = block_run(cfg, opts, v, l, round, block, cpu_round_trip_ns).await;
                        (i, r)
                    }
                });
            futures_util::future::join_all(blocks).await
        } else {
            let mut results = Vec::new();
            for i in order {
                if opts.cancel.is_cancelled() {
                    break;
                }
                let Some(l) = live[i].as_mut() else { continue };
                let r =
                    block_run(cfg, opts, &variants[i], l, round, block, cpu_round_trip_ns).await;
                results.push((i, r));
            }
            results
        };
        for (i, result) in results {
            let v = &mut variants[i];
            match result {
                Ok(run) => {
                    end.partial |= run.summary.partial;
                    rps.push((v.resolved.name.clone(), run.summary.http_reqs_per_s()));
                    v.runs.push(run);
                }
                // The blocks that finished are kept; the loop ends below.
                Err(_) if opts.cancel.is_cancelled() => {}
                Err(reason) => {
                    fail(opts, v, reason);
                    if let Some(l) = live[i].take() {
                        let _ = session::stop(l.server).await;
                    }
                }
            }
        }
        if opts.cancel.is_cancelled() {
            end.partial = true;
            break 'rounds;
        }
        (opts.on_event)(Event::RoundDone {
            round,
            rounds: planned,
            rps,
        });
        round += 1;
        end.repeats = round;
    }
    if let (Some(goal), None) = (&cfg.precision, &end.precision) {
        end.precision = Some(crate::precision::cut_short(
            goal,
            limits(goal),
            variants,
            round,
            started.elapsed(),
            opts.cancel.is_cancelled(),
        ));
    }
    end.repeats = round;
}

/// One block of `v` in `round`.
async fn block_run(
    cfg: &CompareConfig,
    opts: &Options,
    v: &VariantOutcome,
    l: &mut Live,
    round: u32,
    block: Duration,
    cpu_round_trip_ns: Option<f64>,
) -> Result<RunOutcome, String> {
    let window = session::measure(cfg, opts, l.server.as_mut(), &l.url, block, false).await?;
    let raw_file = session::write_raw(opts, &v.resolved.name, round, &window.summary)?;
    Ok(RunOutcome {
        repeat: round,
        cold_start_ms: std::mem::take(&mut l.cold_start_ms),
        summary: window.summary,
        usage: window.usage,
        loadgen: window.loadgen,
        server_counts: window.server_counts,
        raw_file,
        capacity: None,
        cpu_round_trip_ns,
    })
}

/// One capacity search per variant for each of the first `cfg.repeats` rounds, the variants
/// in a rotating order, each recorded with that round's block so the searches pair by round.
async fn capacities(
    cfg: &CompareConfig,
    opts: &Options,
    variants: &mut [VariantOutcome],
    live: &mut [Option<Live>],
    pinning: Option<&(Vec<usize>, Vec<usize>)>,
    rounds_done: u32,
) {
    let Some(options) = &opts.capacity else {
        return;
    };
    let n = variants.len();
    for r in 0..cfg.repeats.min(rounds_done) {
        for k in 0..n {
            let i = (k + r as usize) % n;
            if opts.cancel.is_cancelled() {
                return;
            }
            let v = &mut variants[i];
            let Some(l) = live[i].as_mut() else { continue };
            if v.status != Status::Ok {
                continue;
            }
            session::phase(opts, v, r, "capacity", None);
            let found = match session::plan_for(cfg, l.url.clone(), cfg.load.duration) {
                Ok(plan) => {
                    session::capacity(opts, options, &plan, l.server.as_mut(), pinning).await
                }
                Err(e) => Err(e.to_string()),
            };
            match found {
                Ok(c) => {
                    if let Some(run) = v.runs.iter_mut().find(|x| x.repeat == r) {
                        run.capacity = Some(c);
                    }
                }
                Err(_) if opts.cancel.is_cancelled() => return,
                Err(reason) => {
                    fail(opts, v, reason);
                    if let Some(l) = live[i].take() {
                        let _ = session::stop(l.server).await;
                    }
                }
            }
        }
    }
}

fn fail(opts: &Options, v: &mut VariantOutcome, reason: String) {
    (opts.on_event)(Event::Failed {
        variant: v.resolved.name.clone(),
        reason: reason.clone(),
    });
    v.status = Status::Failed(reason);
}
