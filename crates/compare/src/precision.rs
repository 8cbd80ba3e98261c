//! When a comparison with a precision target (`--precision`) stops repeating, and what it
//! reached.

use std::time::Duration;

use wasmbench_report::{PrecisionRecord, PrecisionStop};

use crate::config::PrecisionGoal;
use crate::outcome::{Status, VariantOutcome};

/// Whether repeating stops after `done` repeats (or rounds) that took `spent`, with at least
/// `min` and at most `max` of them, and the precision reached: the widest relative half-width
/// of a headline ratio's interval and the ratio that has it.
pub(crate) fn check(
    goal: &PrecisionGoal,
    (min, max): (u32, u32),
    variants: &[VariantOutcome],
    done: u32,
    spent: Duration,
) -> (Option<PrecisionStop>, Option<(f64, String)>) {
    let runs = |v: &VariantOutcome| -> Vec<wasmbench_report::RunResult> {
        v.runs.iter().map(crate::report::run).collect()
    };
    let reached = variants
        .first()
        .filter(|b| b.status == Status::Ok)
        .and_then(|base| {
            let base_runs = runs(base);
            let others: Vec<(String, Vec<wasmbench_report::RunResult>)> = variants[1..]
                .iter()
                .filter(|v| v.status == Status::Ok)
                .map(|v| (v.resolved.name.clone(), runs(v)))
                .collect();
            wasmbench_report::headline_precision(
                &base_runs,
                others.iter().map(|(n, r)| (n.as_str(), r.as_slice())),
            )
        });
    let stop = if done >= min && reached.as_ref().is_some_and(|(w, _)| *w <= goal.target) {
        Some(PrecisionStop::TargetMet)
    } else if variants.first().is_none_or(|b| b.status != Status::Ok)
        || variants.iter().filter(|v| v.status == Status::Ok).count() < 2
    {
        Some(PrecisionStop::NothingToCompare)
    } else if done >= max {
        Some(PrecisionStop::RepeatCap)
    } else if done > 0 && spent + spent / done > goal.max_time {
        // The next repeat is expected to take as long as the mean one so far.
        Some(PrecisionStop::TimeBudget)
    } else {
        None
    };
    (stop, reached)
}

pub(crate) fn record(
    goal: &PrecisionGoal,
    stopped: PrecisionStop,
    reached: Option<(f64, String)>,
    repeats: u32,
) -> PrecisionRecord {
    let (reached, limited_by) = reached.map_or((None, None), |(w, by)| (Some(w), Some(by)));
    PrecisionRecord {
        target: goal.target,
        reached,
        limited_by,
        repeats,
        stopped,
        max_time_s: goal.max_time.as_secs_f64(),
    }
}

/// The record of a run that ended before a check stopped it, interrupted or with no variant
/// left to run, with how far it got after `done` repeats (or rounds).
pub(crate) fn cut_short(
    goal: &PrecisionGoal,
    limits: (u32, u32),
    variants: &[VariantOutcome],
    done: u32,
    spent: Duration,
    interrupted: bool,
) -> PrecisionRecord {
    let (_, reached) = check(goal, limits, variants, done, spent);
    let stop = if interrupted {
        PrecisionStop::Interrupted
    } else {
        PrecisionStop::NothingToCompare
    };
    record(goal, stop, reached, done)
}

/// Whether the loop stops before its next repeat (or round), `done` of them started and at
/// least `planned` wanted: `Some` with what to record (nothing without a target) when it stops.
pub(crate) fn stop_before(
    goal: Option<(&PrecisionGoal, (u32, u32))>,
    variants: &[VariantOutcome],
    done: u32,
    planned: u32,
    spent: Duration,
) -> Option<Option<PrecisionRecord>> {
    if done < planned {
        return None;
    }
    let Some((goal, limits)) = goal else {
        return Some(None);
    };
    let (stop, reached) = check(goal, limits, variants, done, spent);
    stop.map(|stop| Some(record(goal, stop, reached, done)))
}
