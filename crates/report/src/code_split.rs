//! Where each server's work went: the callgrind pass's instructions per request split by the
//! code they ran in, beside the kernel's share of the measured runs' CPU time. One source for
//! the table of every format, the HTML stacked bar and the explanation's sentence.

use crate::model::{CallgrindCount, CodeKind, Comparison, Figure, VariantResult, VariantStatus};
use crate::units::fmt_count;

/// Parts of a split below this share are folded into their kind's row (interfaces) or left
/// out of the sentence.
const NAMED_SHARE: f64 = 0.02;

/// The variants with a split, in report order.
fn split_variants(c: &Comparison) -> Vec<(&VariantResult, &CallgrindCount)> {
    c.variants
        .iter()
        .filter(|v| v.status == VariantStatus::Ok)
        .filter_map(|v| {
            let cg = v.callgrind.as_ref()?;
            (!cg.by_code.is_empty() && cg.requests > 0).then_some((v, cg))
        })
        .collect()
}

/// Instructions per request of `code` (and `interface`, when given) in `cg`.
fn per_req(cg: &CallgrindCount, code: CodeKind, interface: Option<&str>) -> f64 {
    let sum: u64 = cg
        .by_code
        .iter()
        .filter(|p| p.code == code && (interface.is_none() || p.interface.as_deref() == interface))
        .map(|p| p.instructions)
        .sum();
    sum as f64 / cg.requests as f64
}

fn total(cg: &CallgrindCount) -> u64 {
    cg.by_code.iter().map(|p| p.instructions).sum()
}

/// The kernel's share of the server's CPU time over `v`'s measured runs (system over user +
/// system, summed over runs); `None` when no run measured the server's CPU.
pub(crate) fn kernel_share(v: &VariantResult) -> Option<f64> {
    let (mut sys, mut all) = (0.0, 0.0);
    // The kubelet's figures do not split user from system time.
    for s in v
        .runs
        .iter()
        .filter_map(|r| r.server.as_ref())
        .filter(|s| s.source.is_none())
    {
        sys += s.cpu_sys_ms;
        all += s.cpu_user_ms + s.cpu_sys_ms;
    }
    (all > 0.0).then(|| sys / all)
}

fn pct(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// The WASI interfaces of `cg` with at least [`NAMED_SHARE`] of its instructions, largest
/// first.
fn interfaces(cg: &CallgrindCount) -> Vec<(&str, u64)> {
    let all = total(cg).max(1) as f64;
    let mut out: Vec<(&str, u64)> = cg
        .by_code
        .iter()
        .filter(|p| p.code == CodeKind::WasiHost)
        .filter_map(|p| Some((p.interface.as_deref()?, p.instructions)))
        .filter(|(_, n)| *n as f64 / all >= NAMED_SHARE)
        .collect();
    out.sort_by_key(|b| std::cmp::Reverse(b.1));
    out
}

/// The table: a heading, then a header row (`code`, one column per variant with a split) and
/// one row per kind of code any variant ran, WASI interfaces below their kind, and the kernel
/// share last. `None` when no variant has a split.
pub(crate) fn rows(c: &Comparison) -> Option<(String, Vec<Vec<String>>)> {
    let vars = split_variants(c);
    if vars.is_empty() {
        return None;
    }
    let vus = vars[0].1.vus;
    let heading = format!(
        "where the server's instructions went: callgrind's instructions per request at {vus} VU \
         (a pass of its own, less the idle rate), by the code that ran them, libc and std counted \
         as the code that called them; the kernel row is the system share of the measured runs' \
         CPU time"
    );
    let mut header = vec!["code".to_string()];
    header.extend(vars.iter().map(|(v, _)| v.name.clone()));
    let mut out = vec![header];
    let cell = |cg: &CallgrindCount, n: f64| {
        let share = n * cg.requests as f64 / total(cg).max(1) as f64;
        if n > 0.0 {
            format!("{}/req ({})", fmt_count(n), pct(share))
        } else {
            "–".to_string()
        }
    };
    for &code in CodeKind::ALL {
        if vars.iter().all(|(_, cg)| per_req(cg, code, None) <= 0.0) {
            continue;
        }
        let mut row = vec![code.label().to_string()];
        row.extend(vars.iter().map(|(_, cg)| cell(cg, per_req(cg, code, None))));
        out.push(row);
        if code == CodeKind::WasiHost {
            let mut names: Vec<&str> = vars
                .iter()
                .flat_map(|(_, cg)| interfaces(cg).into_iter().map(|(n, _)| n))
                .collect();
            names.sort_unstable();
            names.dedup();
            for name in names {
                let mut row = vec![format!("  of which {name}")];
                row.extend(
                    vars.iter()
                        .map(|(_, cg)| cell(cg, per_req(cg, code, Some(name)))),
                );
                out.push(row);
            }
        }
    }
    let mut total_row = vec!["all user-space code".to_string()];
    total_row.extend(
        vars.iter()
            .map(|(_, cg)| format!("{}/req", fmt_count(total(cg) as f64 / cg.requests as f64))),
    );
    out.push(total_row);
    if vars.iter().any(|(v, _)| kernel_share(v).is_some()) {
        let mut row = vec!["kernel share of server CPU time".to_string()];
        row.extend(
            vars.iter()
                .map(|(v, _)| kernel_share(v).map(pct).unwrap_or_else(|| "–".into())),
        );
        out.push(row);
    }
    Some((heading, out))
}

/// One variant's stacked bar: server CPU per 1000 requests (the median of its measured runs),
/// the kernel's share from its CPU times and the user part split in the proportions of its
/// callgrind instructions. Parts are (label, ms per 1000 requests), bottom first.
pub(crate) struct CpuBar<'a> {
    /// The variant.
    pub variant: &'a VariantResult,
    /// (part, ms per 1000 requests).
    pub parts: Vec<(&'static str, f64)>,
}

/// The label of the kernel part of a [`CpuBar`].
pub(crate) const KERNEL: &str = "kernel";

/// The stacked bars of the variants that have a split and a CPU figure.
pub(crate) fn cpu_bars(c: &Comparison) -> Vec<CpuBar<'_>> {
    split_variants(c)
        .into_iter()
        .filter_map(|(v, cg)| {
            let cpu = v.figure_value(Figure::ServerCpuMsPer1kReq)?;
            let kernel = kernel_share(v)?;
            let user = cpu * (1.0 - kernel);
            let all = total(cg).max(1) as f64;
            let mut parts = vec![(KERNEL, cpu * kernel)];
            for &code in CodeKind::ALL {
                let n: u64 = cg
                    .by_code
                    .iter()
                    .filter(|p| p.code == code)
                    .map(|p| p.instructions)
                    .sum();
                if n > 0 {
                    parts.push((code.label(), user * n as f64 / all));
                }
            }
            Some(CpuBar { variant: v, parts })
        })
        .collect()
}

/// "Of wasip2's 174.29k instructions per request, 52% ran in WASI host functions
/// (wasi:io/streams 30%, …), …; native's 2.21k: …" for `v` beside the baseline, from the
/// split only; `None` unless both have one.
pub(crate) fn sentence(base: &VariantResult, v: &VariantResult) -> Option<String> {
    let describe = |v: &VariantResult| -> Option<String> {
        let cg = v.callgrind.as_ref().filter(|cg| !cg.by_code.is_empty())?;
        let all = total(cg).max(1) as f64;
        let mut kinds: Vec<(CodeKind, u64)> = CodeKind::ALL
            .iter()
            .map(|&k| {
                let n = cg
                    .by_code
                    .iter()
                    .filter(|p| p.code == k)
                    .map(|p| p.instructions)
                    .sum();
                (k, n)
            })
            .filter(|(_, n)| *n as f64 / all >= NAMED_SHARE)
            .collect();
        kinds.sort_by_key(|b| std::cmp::Reverse(b.1));
        let parts: Vec<String> = kinds
            .iter()
            .map(|&(k, n)| {
                let mut s = format!("{} in {}", pct(n as f64 / all), k.label());
                if k == CodeKind::WasiHost {
                    let named: Vec<String> = interfaces(cg)
                        .iter()
                        .map(|(name, m)| format!("{name} {}", pct(*m as f64 / all)))
                        .collect();
                    if !named.is_empty() {
                        s.push_str(&format!(" ({})", named.join(", ")));
                    }
                }
                s
            })
            .collect();
        Some(format!(
            "of {}'s {} instructions per request, {}",
            v.name,
            fmt_count(all / cg.requests.max(1) as f64),
            parts.join(", ")
        ))
    };
    let (a, b) = (describe(v)?, describe(base)?);
    let mut s = format!(
        "Callgrind's split at {} VU: {a}; {b}",
        v.callgrind.as_ref()?.vus
    );
    if let (Some(kv), Some(kb)) = (kernel_share(v), kernel_share(base)) {
        s.push_str(&format!(
            "; in the measured runs the kernel took {} of {}'s server CPU time and {} of {}'s",
            pct(kv),
            v.name,
            pct(kb),
            base.name
        ));
    }
    s.push('.');
    Some(s)
}
