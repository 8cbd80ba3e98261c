//! Facts that explain a gap between variants, derived from the measured data only.

use std::collections::BTreeMap;
use wasmbench_vocab::one_line;

use crate::model::{
    Comparison, ConnectionMode, ExecMode, Figure, KubernetesEnv, PHASES, SyscallKind,
    VariantResult, VariantStatus,
};
use crate::stats::CV_WARN_THRESHOLD;
use crate::table::{pods_per_node, runtime_label};
use crate::units::{fmt_bytes, fmt_count, fmt_ms, fmt_ratio, fmt_value};

/// Two p95 values within this factor of each other count as "the same".
const SAME_BAND: f64 = 0.15;
/// Phases whose p95 differ by less than this are treated as equal whatever their ratio:
/// sub-20µs differences are timer noise on a loaded machine.
const NEGLIGIBLE_MS: f64 = 0.02;

fn mode_sentence(v: &VariantResult) -> String {
    let rt = &v.runtime;
    let who = runtime_label(rt);
    let how = match rt.mode {
        ExecMode::Native => match rt.details.get("command") {
            // The user's command: only what was read from it.
            Some(command) => {
                let program = rt.details.get("program").map_or("", String::as_str);
                let mut s = format!("runs the user's command `{command}` as a process of its own");
                if let Some(kind) = rt.details.get("program_kind") {
                    let article = if kind.starts_with(['E', 'e']) {
                        "an"
                    } else {
                        "a"
                    };
                    s.push_str(&format!(": {program} is {article} {kind}"));
                }
                if let Some(v) = rt.details.get("program_version") {
                    s.push_str(&format!(", whose `--version` prints \"{v}\""));
                }
                s
            }
            None => "runs as a native executable: no runtime, no sandbox boundary".to_string(),
        },
        ExecMode::CraneliftJit => format!(
            "runs under {who} with Cranelift compiling the module to machine code at start-up \
             (optimised code; the compile time lands in cold start, not in the load run)"
        ),
        ExecMode::Precompiled => {
            format!("runs under {who} from precompiled machine code (no compilation at start-up)")
        }
        ExecMode::Winch => format!(
            "runs under {who} with Winch, a fast baseline compiler whose code is slower than Cranelift's"
        ),
        ExecMode::Pulley => format!(
            "runs under {who} on Pulley, wasmtime's portable bytecode interpreter (expect several times slower code)"
        ),
        ExecMode::Interpreter => {
            format!("runs under {who} in an interpreter (expect several times slower code)")
        }
        ExecMode::Aot => format!("runs under {who} from ahead-of-time compiled code"),
        ExecMode::Unreported => format!(
            "runs under {who}, which did not report how it runs the Wasm (compiled, interpreted \
             or ahead of time)"
        ),
    };
    let mut s = if v.is_wasm() {
        format!("{} ({}) {how}", v.name, v.runtime.target.as_str())
    } else {
        format!("{} {how}", v.name)
    };
    match instance_reuse(rt) {
        Some(1) => s.push_str("; a new instance for every request"),
        Some(n) => s.push_str(&format!("; each instance answers up to {n} requests")),
        None => {}
    }
    match rt.pooling {
        Some(true) => s.push_str("; pooling instance allocator on"),
        Some(false) => s.push_str("; pooling instance allocator off (on-demand allocation)"),
        None => {}
    }
    if let Some(ms) = v.artifact.as_ref().and_then(|a| a.compile_ms) {
        if rt.mode == ExecMode::Precompiled || rt.mode == ExecMode::Aot {
            s.push_str(&format!(
                "; compiling it once, into the cache the measured starts load, took {}",
                fmt_ms(ms)
            ));
        } else {
            s.push_str(&format!(
                "; Wasm → machine code compile took {}",
                fmt_ms(ms)
            ));
        }
    }
    s.push('.');
    s
}

/// Requests one instance answers, for hosts that make instances per request (`wasi:http`).
pub(crate) fn instance_reuse(rt: &crate::model::RuntimeInfo) -> Option<u64> {
    rt.details
        .get("instance_reuse")
        .and_then(|n| n.parse().ok())
}

fn concurrency_sentence(mode: &str, names: &[&str]) -> String {
    let who = names.join(", ");
    match mode {
        "concurrent" => format!(
            "Concurrency model of {who}: `concurrent`, one poll(2) event loop serves every open \
             connection, so a request waits only for the loop's current turn."
        ),
        "seed" => format!(
            "Concurrency model of {who}: `seed` (the demo's server), one connection at a time; \
             with many VUs the others queue in the listen backlog, and that queue shows up in \
             http_req_blocked/connecting (new connections) or http_req_waiting."
        ),
        crate::model::WASI_HTTP_MODE => format!(
            "Concurrency model of {who}: `wasi-http`, the host accepts connections concurrently \
             and calls the component's handler once per request."
        ),
        other => format!("Concurrency model of {who}: `{other}`."),
    }
}

/// For a service whose concurrency model the run was not told: the threads its server
/// process had, as measured.
fn observed_concurrency_sentence(v: &VariantResult) -> String {
    let threads: Vec<u64> = v
        .runs
        .iter()
        .filter_map(|r| r.server_counts.as_ref().map(|c| c.threads))
        .collect();
    let seen = match (threads.iter().min(), threads.iter().max()) {
        (Some(a), Some(b)) if a == b => format!(
            "its server process (runtime included) had at most {a} thread{} at once in each \
             measured run",
            if *a == 1 { "" } else { "s" }
        ),
        (Some(a), Some(b)) => format!(
            "its server process (runtime included) had at most {a} to {b} threads at once in \
             a measured run"
        ),
        _ => "its server's threads were not observed".to_string(),
    };
    format!(
        "Concurrency model of {}: not declared (a service wasmbench did not build); {seen}.",
        v.name
    )
}

/// Where the time went between `v` and the baseline, phase by phase (p95 medians).
fn where_time_went(c: &Comparison, base: &VariantResult, v: &VariantResult) -> Option<String> {
    let mut rows = Vec::new();
    for p in PHASES {
        let f = Figure::phase_p95(p)?;
        if let (Some(a), Some(b)) = (v.figure_value(f), base.figure_value(f)) {
            rows.push((p, f, a, b));
        }
    }
    let (dom, _, da, db) = rows
        .iter()
        .copied()
        .max_by(|x, y| (x.2 - x.3).abs().total_cmp(&(y.2 - y.3).abs()))?;
    if (da - db).abs() < NEGLIGIBLE_MS {
        return Some(format!(
            "{} and {} spend the same time in every phase (p95 within {}).",
            v.name,
            base.name,
            fmt_ms(NEGLIGIBLE_MS)
        ));
    }
    // The largest difference within the noise band is no gap to explain.
    if db > 0.0 && (da / db - 1.0).abs() <= SAME_BAND {
        return Some(format!(
            "{} and {} spend about the same time in each phase: the largest difference, in {dom}, \
             is {} (p95 {} vs {}).",
            v.name,
            base.name,
            fmt_ratio(da / db),
            fmt_ms(da),
            fmt_ms(db)
        ));
    }
    let rel = |a: f64, b: f64| -> String {
        if (a - b).abs() < NEGLIGIBLE_MS || (b > 0.0 && (a / b - 1.0).abs() <= SAME_BAND) {
            "the same".to_string()
        } else if b > 0.0 {
            format!("{} {}", fmt_ratio(a / b), base.name)
        } else {
            format!("{} vs {}", fmt_ms(a), fmt_ms(b))
        }
    };
    let ratio_txt = c
        .ratio(&v.name, Figure::phase_p95(dom)?)
        .map(|r| format!("{} {}", fmt_ratio(r), base.name))
        .unwrap_or_else(|| format!("{} vs {}", fmt_ms(da), fmt_ms(db)));
    let find = |name: &str| rows.iter().find(|r| r.0 == name).map(|r| (r.2, r.3));
    let mut s = format!(
        "{} spends {} in {} (p95 {} vs {})",
        v.name,
        ratio_txt,
        dom,
        fmt_ms(da),
        fmt_ms(db)
    );
    match dom {
        "http_req_waiting" | "http_req_receiving" | "http_req_sending" => {
            if let Some((a, b)) = find("http_req_connecting") {
                s.push_str(&format!(" but {} in http_req_connecting", rel(a, b)));
            }
            s.push_str(match dom {
                "http_req_waiting" => {
                    ": the gap is server processing (time to first byte, including queueing in \
                     the server), not connection setup"
                }
                "http_req_receiving" => {
                    ": the gap is in the response's delivery after its first byte (a response \
                     written in parts, or a body sent slowly), not connection setup"
                }
                _ => {
                    ": the gap is in sending the request (the server reading it slowly), not \
                      connection setup"
                }
            });
            // Each side's own largest phase, when the baseline's is another: the reader sees
            // where each spends its time, not only where they differ most.
            let own_max = |pick: fn(&(&str, Figure, f64, f64)) -> f64| {
                rows.iter()
                    .max_by(|x, y| pick(x).total_cmp(&pick(y)))
                    .map(|r| (r.0, pick(r)))
            };
            if let Some((p, ms)) = own_max(|r| r.3).filter(|(p, ms)| *p != dom && *ms > db) {
                s.push_str(&format!(
                    "; {}'s own largest phase is {p} (p95 {})",
                    base.name,
                    fmt_ms(ms)
                ));
            }
            s.push('.');
        }
        _ => {
            if let Some((a, b)) = find("http_req_waiting") {
                s.push_str(&format!(" and {} in http_req_waiting", rel(a, b)));
            }
            s.push_str(
                ": the gap is connection setup (the server accepting new connections), not \
                 request processing.",
            );
        }
    }
    Some(s)
}

/// The syscall kinds named beside the total, in the order a request meets them.
const NAMED_KINDS: [SyscallKind; 4] = [
    SyscallKind::Accept,
    SyscallKind::Poll,
    SyscallKind::Read,
    SyscallKind::Write,
];

/// Per-request counts below this are "none" (a stray call over thousands of requests).
const NEGLIGIBLE_PER_REQ: f64 = 0.005;

/// What the kernel counted per request for `v` beside the baseline: syscalls by kind, context
/// switches, instructions. Only figures both variants measured are named; without the syscall
/// total there is no sentence.
fn kernel_sentence(base: &VariantResult, v: &VariantResult) -> Option<String> {
    let pair = |f: Figure| Some((v.figure_value(f)?, base.figure_value(f)?));
    let (all_v, all_b) = pair(Figure::SyscallsPerReq)?;
    let mut parts = Vec::new();
    let (mut named_v, mut named_b) = (0.0, 0.0);
    let mut largest: Option<(SyscallKind, f64)> = None;
    for kind in NAMED_KINDS {
        let Some((a, b)) = pair(Figure::syscalls_per_req(kind)) else {
            continue;
        };
        named_v += a;
        named_b += b;
        if a < NEGLIGIBLE_PER_REQ && b < NEGLIGIBLE_PER_REQ {
            continue;
        }
        parts.push(format!("{kind} {} vs {}", fmt_count(a), fmt_count(b)));
        if largest.is_none_or(|(_, d)| (a - b).abs() > d.abs()) {
            largest = Some((kind, a - b));
        }
    }
    let (other_v, other_b) = ((all_v - named_v).max(0.0), (all_b - named_b).max(0.0));
    if !parts.is_empty() {
        parts.push(format!(
            "other {} vs {}",
            fmt_count(other_v),
            fmt_count(other_b)
        ));
    }
    let mut s = format!(
        "{} made {} syscalls per request vs {} for {}",
        v.name,
        fmt_count(all_v),
        fmt_count(all_b),
        base.name
    );
    if !parts.is_empty() {
        s.push_str(&format!(" ({})", parts.join(", ")));
    }
    let diff = all_v - all_b;
    if diff.abs() >= NEGLIGIBLE_PER_REQ && all_b > 0.0 {
        let other = ("other (none of accept/poll/read/write)", other_v - other_b);
        let (what, d) = match largest {
            Some((k, d)) if d.abs() >= other.1.abs() => (k.as_str(), d),
            _ => other,
        };
        s.push_str(&format!(
            "; the largest difference is {} {what} calls per request",
            signed(d)
        ));
    }
    if let Some((a, b)) = pair(Figure::ContextSwitchesPerReq) {
        s.push_str(&format!(
            "; {} vs {} context switches per request",
            fmt_count(a),
            fmt_count(b)
        ));
    }
    s.push('.');
    Some(s)
}

/// How `v`'s instructions per request were counted: the hardware counter over its measured
/// runs, or the callgrind pass.
fn instruction_source(v: &VariantResult) -> Option<String> {
    if v.runs.iter().any(|r| {
        r.server_counts
            .as_ref()
            .is_some_and(|c| c.instructions.is_some())
    }) {
        return Some("the CPU's instruction counter over the measured runs".into());
    }
    let c = v.callgrind.as_ref()?;
    let pace = match c.rate_per_s {
        Some(rate) => format!("{rate} requests/s from {} VU", c.vus),
        None => format!("{} VU", c.vus),
    };
    Some(format!(
        "callgrind ({}) over {} requests at {pace} in a pass of its own, less its idle {} instructions/s",
        c.valgrind,
        c.requests,
        fmt_count(c.idle_instructions_per_s as f64)
    ))
}

/// Instructions per request of `v` beside the baseline, each with how it was counted.
fn instructions_sentence(
    c: &Comparison,
    base: &VariantResult,
    v: &VariantResult,
) -> Option<String> {
    let f = Figure::InstructionsPerReq;
    let (a, b) = (v.figure_value(f)?, base.figure_value(f)?);
    let (how_v, how_b) = (instruction_source(v)?, instruction_source(base)?);
    let ratio = c
        .ratio(&v.name, f)
        .map(|r| format!(" ({} {})", fmt_ratio(r), base.name))
        .unwrap_or_default();
    let how = if how_v == how_b {
        format!("both counted by {how_v}")
    } else {
        format!("{} counted by {how_v}, {} by {how_b}", v.name, base.name)
    };
    // Counted in user space by a simulated CPU: stable from run to run, but blind to what
    // makes instructions slow or happen elsewhere.
    let blind = if v.callgrind.is_some() || base.callgrind.is_some() {
        " Callgrind counts the server's own instructions only: the kernel's work for it (system \
         time), cache misses and branch mispredictions are not in the count."
    } else {
        ""
    };
    Some(format!(
        "{} executed {} instructions per request vs {} for {}{ratio}; {how}.{blind}",
        v.name,
        fmt_count(a),
        fmt_count(b),
        base.name
    ))
}

fn signed(d: f64) -> String {
    if d >= 0.0 {
        format!("+{}", fmt_count(d))
    } else {
        format!("−{}", fmt_count(-d))
    }
}

/// The connections each variant's load opened, from the load generator's own count; `None`
/// when no run counted them (k6 does not).
fn connections_sentence(c: &Comparison) -> Option<String> {
    let parts: Vec<String> = c
        .variants
        .iter()
        .filter(|v| v.status == VariantStatus::Ok)
        .filter_map(|v| {
            let (opened, reqs) = connections_of(v)?;
            Some(format!("{} {opened} for {reqs} requests", v.name))
        })
        .collect();
    (!parts.is_empty()).then(|| format!("TCP connections opened: {}.", parts.join(", ")))
}

/// (connections opened, requests) over the runs of `v` that counted connections.
fn connections_of(v: &VariantResult) -> Option<(u64, u64)> {
    let counted: Vec<_> = v
        .runs
        .iter()
        .filter_map(|r| Some((r.connections_opened?, r.http_reqs)))
        .collect();
    (!counted.is_empty()).then(|| counted.iter().fold((0, 0), |(o, n), (a, b)| (o + a, n + b)))
}

/// Connections the load opens at the start of its runs: one per VU of each load generator.
fn first_connections(c: &Comparison, v: &VariantResult) -> u64 {
    let generators = c
        .meta
        .environment
        .kubernetes
        .as_ref()
        .and_then(|k| k.variants.get(&v.name))
        .map_or(1, |p| {
            p.load_pods_per_node
                .values()
                .map(|n| u64::from(*n))
                .sum::<u64>()
        })
        .max(1);
    u64::from(c.plan.vus) * generators * v.runs.len() as u64
}

/// What the kernel counters could not count (and why) or counted only in part, each once; a
/// figure another method supplied (instructions from callgrind) needs no note.
fn counter_notes(c: &Comparison) -> Vec<String> {
    let mut notes: Vec<String> = Vec::new();
    let mut note = |n: String| {
        if !notes.contains(&n) {
            notes.push(n);
        }
    };
    for v in c.variants.iter().filter(|v| v.status == VariantStatus::Ok) {
        let instructions_known = v.figure_value(Figure::InstructionsPerReq).is_some();
        for s in v.runs.iter().filter_map(|r| r.server_counts.as_ref()) {
            if let Some(why) = &s.syscalls_not_counted {
                note(format!(
                    "Not measured in this run: syscalls per request ({why})."
                ));
            }
            if let Some(why) = s
                .instructions_not_counted
                .as_ref()
                .filter(|_| !instructions_known)
            {
                note(format!(
                    "Not measured in this run: instructions per request ({why})."
                ));
            }
            for n in &s.notes {
                note(format!("{}: {n}.", v.name));
            }
        }
    }
    notes
}

/// The cluster and the nodes the servers ran on, from what the Kubernetes API reported.
fn kubernetes_sentence(k: &KubernetesEnv, wasmbench: &str) -> String {
    let mut servers: Vec<&str> = k
        .variants
        .values()
        .flat_map(|p| p.server_nodes.iter().map(String::as_str))
        .collect();
    servers.sort_unstable();
    servers.dedup();
    let nodes: Vec<String> = servers
        .iter()
        .filter_map(|name| k.nodes.iter().find(|n| n.name == *name))
        .map(|n| {
            format!(
                "{} (kubelet {}, {}, kernel {}, {} CPUs, {} memory)",
                n.name,
                n.kubelet_version,
                n.container_runtime_version,
                n.kernel_version,
                n.cpu_capacity,
                fmt_bytes(n.memory_capacity_bytes as f64)
            )
        })
        .collect();
    format!(
        "Environment: Kubernetes {}, {} node(s); the echo servers ran on {}; wasmbench {wasmbench}.",
        k.server_version,
        k.nodes.len(),
        if nodes.is_empty() {
            "no node that reported itself".to_string()
        } else {
            nodes.join(", ")
        }
    )
}

/// Where each variant's server and load pods ran.
fn placement_sentence(k: &KubernetesEnv) -> Option<String> {
    let parts: Vec<String> = k
        .variants
        .iter()
        .map(|(name, p)| {
            format!(
                "{name}: server on {}, load pods on {}",
                p.server_nodes.join(", "),
                pods_per_node(p)
            )
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "Pod placement (one load pod per node, each loading the variant's Service from inside the cluster): {}.",
            parts.join("; ")
        )
    })
}

/// Derives the explanation facts from the data in `c` (stored ratios included).
pub fn explain(c: &Comparison) -> Vec<String> {
    let mut out = Vec::new();
    let env = &c.meta.environment;
    // The build environment only for what wasmbench built: never the user's builds.
    let built_with = c
        .built_with()
        .map(|rustc| format!(", artifacts built with {rustc}"))
        .unwrap_or_default();
    match &env.kubernetes {
        None => out.push(format!(
            "Environment: {} ({} logical CPUs), {} memory, {} kernel {}{built_with}; wasmbench {}.",
            env.cpu_model,
            env.cpu_count,
            fmt_bytes(env.memory_bytes as f64),
            env.os,
            env.kernel,
            c.meta.wasmbench_version
        )),
        Some(k) => out.push(kubernetes_sentence(k, &c.meta.wasmbench_version)),
    }
    out.push(match c.plan.connection_mode {
        ConnectionMode::KeepAlive => "Connection mode: keep-alive. The load generator reuses a \
            connection for as long as the server keeps it open, so where the server does, \
            http_req_blocked and http_req_connecting stay near zero and server cost shows in \
            http_req_waiting (time to first byte)."
            .to_string(),
        ConnectionMode::NewConnectionPerRequest => "Connection mode: new connection per request. \
            Every request pays a TCP connect in http_req_blocked/http_req_connecting, and the \
            server's accept path is part of what is measured."
            .to_string(),
    });
    out.extend(connections_sentence(c));
    match (&c.plan.cpu_pinning, &env.kubernetes) {
        (_, Some(k)) => out.extend(placement_sentence(k)),
        (Some(p), None) => out.push(format!(
            "CPU pinning: server on CPUs {:?}, load generator on CPUs {:?}, so they do not compete for the same cores.",
            p.server_cpus, p.load_cpus
        )),
        (None, None) => out.push(format!(
            "No CPU pinning: server and load generator share the {} CPUs, so the load generator's own CPU use competes with the server.",
            env.cpu_count
        )),
    }
    let mut modes: Vec<(&str, Vec<&str>)> = Vec::new();
    for v in &c.variants {
        if v.status == VariantStatus::Ok {
            out.push(mode_sentence(v));
        }
        let Some(mode) = v.workload_mode.as_deref() else {
            if v.status == VariantStatus::Ok {
                out.push(observed_concurrency_sentence(v));
            }
            continue;
        };
        match modes.iter_mut().find(|(m, _)| *m == mode) {
            Some((_, names)) => names.push(&v.name),
            None => modes.push((mode, vec![&v.name])),
        }
    }
    for (m, names) in &modes {
        out.push(concurrency_sentence(m, names));
    }
    let keep_alive = match c.plan.connection_mode {
        ConnectionMode::KeepAlive => true,
        ConnectionMode::NewConnectionPerRequest => false,
    };
    let run = if c.plan.design.is_some_and(crate::model::Design::in_blocks) {
        "block"
    } else {
        "repeat"
    };
    for v in c.variants.iter().filter(|v| v.status == VariantStatus::Ok) {
        out.extend(crate::tail::sentence(v, keep_alive, run));
    }
    let Some(base) = c
        .baseline_variant()
        .filter(|b| b.status == VariantStatus::Ok)
    else {
        out.push(format!(
            "The baseline `{}` did not run, so no ratios can be given.",
            c.baseline
        ));
        return out;
    };
    for v in &c.variants {
        if v.name == base.name || v.status != VariantStatus::Ok {
            continue;
        }
        if let Some(s) = where_time_went(c, base, v) {
            out.push(s);
        }
        out.extend(kernel_sentence(base, v));
        out.extend(instructions_sentence(c, base, v));
        out.extend(crate::code_split::sentence(base, v));
        let mut parts = Vec::new();
        for f in [
            Figure::ThroughputRps,
            Figure::ColdStartMs,
            Figure::ServerCpuMsPer1kReq,
            Figure::ServerRssPeakBytes,
        ] {
            if let (Some(r), Some(a), Some(b)) =
                (c.ratio(&v.name, f), v.figure_value(f), base.figure_value(f))
            {
                parts.push(format!(
                    "{} {} ({} vs {})",
                    f.label(),
                    fmt_ratio(r),
                    fmt_value(a, f.unit()),
                    fmt_value(b, f.unit())
                ));
            }
        }
        if !parts.is_empty() {
            out.push(format!(
                "{} relative to {} (medians): {}.",
                v.name,
                base.name,
                parts.join(", ")
            ));
        }
    }
    out.extend(counter_notes(c));
    out
}

/// Under keep-alive, connections opened beyond this share of requests mean the server closed
/// them (a VU opens one at start and one after each close or error).
const SERVER_CLOSED_SHARE: f64 = 0.01;

/// Share of its CPUs above which the load generator counts as saturated.
const LOADGEN_SATURATED: f64 = 0.9;

/// Runs whose CPU round trip is this many times the shortest one's count as made with the
/// two CPUs placed differently. One placement's probes spread by up to 1.6x on the project's
/// VMs (40–63 ns); its three placements were 2x and more apart (≈50, ≈130, ≈400 ns).
pub const CPU_PLACEMENT_SPLIT: f64 = 2.0;

/// The host moved the virtual CPUs between runs: their round trips differ by
/// [`CPU_PLACEMENT_SPLIT`] or more.
fn cpu_placement_warning(c: &Comparison) -> Option<String> {
    let probes: Vec<(&str, u32, f64)> = c
        .variants
        .iter()
        .flat_map(|v| {
            v.runs
                .iter()
                .filter_map(move |r| Some((v.name.as_str(), r.repeat, r.cpu_round_trip_ns?)))
        })
        .collect();
    let lo = probes.iter().map(|p| p.2).fold(f64::INFINITY, f64::min);
    let hi = probes.iter().map(|p| p.2).fold(0.0, f64::max);
    if probes.len() < 2 || hi < lo * CPU_PLACEMENT_SPLIT {
        return None;
    }
    let mut far: Vec<&(&str, u32, f64)> = probes
        .iter()
        .filter(|p| p.2 >= lo * CPU_PLACEMENT_SPLIT)
        .collect();
    let count = far.len();
    // The farthest few name the worst case; dozens of blocks would bury the sentence.
    far.sort_by(|a, b| b.2.total_cmp(&a.2));
    let named: Vec<String> = far
        .iter()
        .take(3)
        .map(|(name, repeat, ns)| format!("{name} #{} {ns:.0} ns", repeat + 1))
        .collect();
    let farthest = if count > named.len() {
        format!("farthest: {}", named.join(", "))
    } else {
        named.join(", ")
    };
    Some(format!(
        "The server's and the load generator's CPUs were not equally far apart in every run: a cache line took {lo:.0}–{hi:.0} ns to go from one to the other and back, measured before each run, and {count} of {} runs were at {CPU_PLACEMENT_SPLIT}x the shortest or more ({farthest}). Every request over loopback pays that distance, so those runs' figures differ by the machine's state as well as by the variant (on a virtual machine, the host can move the virtual CPUs between physical ones).",
        probes.len(),
    ))
}

/// Warnings derived from the data: noisy figures, failed checks and thresholds, failed or
/// skipped variants, interrupted runs, a saturated load generator, CPUs that moved.
pub fn derive_warnings(c: &Comparison) -> Vec<String> {
    let mut out = Vec::new();
    if c.meta.partial {
        out.push("The run was interrupted: some variants or repeats are missing.".to_string());
    }
    let kubernetes = c.meta.environment.kubernetes.as_ref();
    if c.plan.repeats <= 1 {
        out.push(match kubernetes {
            None => "Only one repeat per variant: no confidence interval; use --repeats 3 or more."
                .to_string(),
            Some(_) => "One load run per variant (k8s run does not repeat): no confidence interval; run it again to see the spread.".to_string(),
        });
    }
    if let Some(k) = kubernetes {
        out.extend(kubernetes_warnings(c, k));
    }
    out.extend(cpu_placement_warning(c));
    out.extend(crate::planned::warning(&c.variants));
    let mut noisy = Vec::new();
    let mut outlying = Vec::new();
    for v in &c.variants {
        match v.status {
            // A reason may quote a child's output: the warning stays one line.
            VariantStatus::Failed => out.push(format!(
                "{} failed: {}",
                v.name,
                one_line(v.reason.as_deref().unwrap_or("no reason recorded"))
            )),
            VariantStatus::Skipped => out.push(format!(
                "{} skipped: {}",
                v.name,
                one_line(v.reason.as_deref().unwrap_or("no reason recorded"))
            )),
            VariantStatus::Ok => {}
        }
        for f in NOISE_FIGURES {
            if let Some(s) = v.aggregate.get(f).filter(|s| s.is_noisy()) {
                noisy.push(format!(
                    "{} {} (CV {:.1}%, n = {})",
                    v.name,
                    f.label(),
                    s.cv * 100.0,
                    s.n
                ));
            }
            if let Some(s) = v.aggregate.get(f).filter(|s| !s.outliers.is_empty()) {
                let unit = f.unit();
                let values: Vec<String> = s
                    .outliers
                    .iter()
                    .map(|x| crate::units::fmt_value(*x, unit))
                    .collect();
                outlying.push(format!(
                    "{} {}: {} of {} (median {})",
                    v.name,
                    f.label(),
                    values.join(", "),
                    s.n,
                    crate::units::fmt_value(s.median, unit),
                ));
            }
        }
        let bounds: Vec<&str> = v
            .runs
            .iter()
            .filter_map(|r| r.capacity.as_ref())
            .filter(|s| s.capacity_rps.is_none())
            .map(|s| s.headline.as_str())
            .collect();
        if !bounds.is_empty() {
            out.push(format!(
                "{}: {} of its {} capacity searches found no server limit ({}); those are bounds, not measurements, and its capacity figure and ratio use only the searches that found one.",
                v.name,
                bounds.len(),
                v.runs.iter().filter(|r| r.capacity.is_some()).count(),
                bounds.join("; ")
            ));
        }
        let load_cpus = c
            .plan
            .cpu_pinning
            .as_ref()
            .map_or(c.meta.environment.cpu_count as usize, |p| p.load_cpus.len())
            .max(1);
        let busiest = v
            .runs
            .iter()
            .filter_map(|r| {
                let l = r.loadgen?;
                (r.duration_s > 0.0).then(|| l.cpu_ms / (r.duration_s * 1e3 * load_cpus as f64))
            })
            .fold(0.0f64, f64::max);
        if busiest >= LOADGEN_SATURATED {
            // Each side's CPU per request says which one a saturated client's rate reflects:
            // a client that pays as much per request as the server, on as many CPUs, cannot
            // drive the server past its own limit.
            let costs = v
                .figure_value(Figure::LoadgenCpuMsPer1kReq)
                .zip(v.figure_value(Figure::ServerCpuMsPer1kReq));
            let cost = costs.map_or(String::new(), |(client, server)| {
                format!(
                    " ({} of CPU per 1k requests against the server's {})",
                    crate::units::fmt_ms(client),
                    crate::units::fmt_ms(server)
                )
            });
            let verdict = if costs.is_some_and(|(client, server)| client >= server) {
                "so its throughput is a bound set by the client, not a measurement of the server"
            } else {
                "so throughput may be bounded by the client rather than the server"
            };
            out.push(format!(
                "{}: the load generator used {:.0}% of its {} CPU(s) in a run{cost}, {verdict}; give the load generator more CPUs (--load-cpus) or compare at a fixed rate (--executor constant-arrival-rate).",
                v.name,
                busiest * 100.0,
                load_cpus
            ));
        }
        let mut transport: BTreeMap<&str, u64> = BTreeMap::new();
        for r in &v.runs {
            for (kind, n) in &r.errors {
                if *n > 0 {
                    *transport.entry(kind.as_str()).or_default() += n;
                }
            }
        }
        if !transport.is_empty() {
            let total: u64 = transport.values().sum();
            out.push(format!(
                "{}: {total} request(s) failed without an HTTP answer ({}), counted in http_req_failed.",
                v.name,
                transport
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if c.plan.connection_mode == ConnectionMode::KeepAlive
            && let Some((opened, reqs)) = connections_of(v)
            && reqs > 0
            && opened.saturating_sub(first_connections(c, v)) as f64
                > reqs as f64 * SERVER_CLOSED_SHARE
        {
            out.push(format!(
                "{}: {opened} TCP connections were opened for {reqs} requests under keep-alive ({:.0}% of requests): the server closed connections, so connection setup is part of its figures (http_req_connecting p95 {}).",
                v.name,
                opened as f64 * 100.0 / reqs as f64,
                v.figure_value(Figure::HttpReqConnectingP95Ms)
                    .map_or_else(|| "not measured".to_string(), fmt_ms)
            ));
        }
        if v.runs
            .iter()
            .any(|r| r.syscalls_per_req(SyscallKind::All).is_some())
        {
            out.push(format!(
                "{}: its syscalls were counted during the measured runs, and counting them lowers a busy server's throughput (docs/metrics.md has the measured cost): compare its time figures only with runs counted the same way.",
                v.name
            ));
        }
        let (passes, fails) = v.runs.iter().fold((0u64, 0u64), |(p, f), r| {
            (p + r.checks.passes, f + r.checks.fails)
        });
        if fails > 0 {
            // Which checks failed, each with its own share: a default check the user never
            // wrote must be recognisable as the one that failed.
            let mut by_check: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
            for r in &v.runs {
                for (name, c) in &r.checks.by_check {
                    let e = by_check.entry(name.as_str()).or_default();
                    e.0 += c.passes;
                    e.1 += c.fails;
                }
            }
            let named: Vec<String> = by_check
                .iter()
                .filter(|(_, (_, f))| *f > 0)
                .map(|(name, (p, f))| {
                    format!(
                        "`{name}` {f} of {} ({:.2}%)",
                        p + f,
                        *f as f64 * 100.0 / (p + f) as f64
                    )
                })
                .collect();
            let which = if named.is_empty() {
                String::new()
            } else {
                format!(": {}", named.join(", "))
            };
            out.push(format!(
                "{}: {} of {} checks failed ({:.2}%){which}.",
                v.name,
                fails,
                passes + fails,
                fails as f64 * 100.0 / (passes + fails) as f64
            ));
        }
        let failed_reqs: f64 = v
            .runs
            .iter()
            .map(|r| r.http_req_failed_rate * r.http_reqs as f64)
            .sum();
        if failed_reqs > 0.0 {
            out.push(format!(
                "{}: {:.0} requests failed (http_req_failed).",
                v.name, failed_reqs
            ));
        }
        let mut seen: Vec<&str> = Vec::new();
        for r in &v.runs {
            for t in r.thresholds.iter().filter(|t| !t.passed) {
                if !seen.contains(&t.expression.as_str()) {
                    seen.push(&t.expression);
                    let n = v
                        .runs
                        .iter()
                        .filter(|r| {
                            r.thresholds
                                .iter()
                                .any(|x| x.expression == t.expression && !x.passed)
                        })
                        .count();
                    out.push(format!(
                        "{}: threshold `{}` failed in {} of {} runs.",
                        v.name,
                        t.expression,
                        n,
                        v.runs.len()
                    ));
                }
            }
        }
    }
    // Short blocks of the interleaved design vary one by one by design, and an odd block is
    // expected among dozens: how far the figures can be trusted is their rounds' paired
    // intervals, which the precision line states with the widest one named.
    if c.plan.design.is_some_and(crate::model::Design::in_blocks) {
        noisy.clear();
        outlying.clear();
    }
    // One line per kind, every case named in it: a reader sees each kind of doubt once.
    if !noisy.is_empty() {
        let hint = if c.precision.is_none() {
            "; `--precision 5%` adds repeats until every headline ratio's 95% interval is within ±5%"
        } else {
            ""
        };
        out.push(format!(
            "Figures that vary between samples by more than {:.0}% (CV): {}. Their intervals and their ratios' say how far to trust them{hint}.",
            CV_WARN_THRESHOLD * 100.0,
            noisy.join(", ")
        ));
    }
    if !outlying.is_empty() {
        out.push(format!(
            "Outliers, beyond {} robust standard deviations of their median (kept in the sample; medians and intervals resist them): {}.",
            crate::stats::OUTLIER_Z,
            outlying.join("; ")
        ));
    }
    out
}

/// The figures whose spread between samples is worth a warning.
const NOISE_FIGURES: [Figure; 6] = [
    Figure::ThroughputRps,
    Figure::HttpReqDurationP50Ms,
    Figure::HttpReqDurationP95Ms,
    Figure::HttpReqWaitingP95Ms,
    Figure::ColdStartMs,
    Figure::ServerCpuMsPer1kReq,
];

/// Placement facts that weaken a cluster comparison.
fn kubernetes_warnings(c: &Comparison, k: &KubernetesEnv) -> Vec<String> {
    let mut out = Vec::new();
    for (name, p) in &k.variants {
        let shared: Vec<&str> = p
            .load_pods_per_node
            .keys()
            .filter(|n| p.server_nodes.contains(n))
            .map(String::as_str)
            .collect();
        if !shared.is_empty() {
            out.push(format!(
                "{name}: load pods ran on {}, the node of its server, so load generator and server competed for its CPUs; add a schedulable node to keep them apart.",
                shared.join(", ")
            ));
        }
    }
    let ran: Vec<(&str, &[String])> = c
        .variants
        .iter()
        .filter(|v| v.status == VariantStatus::Ok)
        .filter_map(|v| {
            k.variants
                .get(&v.name)
                .map(|p| (v.name.as_str(), p.server_nodes.as_slice()))
        })
        .collect();
    if ran.windows(2).any(|w| w[0].1 != w[1].1) {
        let parts: Vec<String> = ran
            .iter()
            .map(|(v, nodes)| format!("{v} on {}", nodes.join(", ")))
            .collect();
        out.push(format!(
            "The servers ran on different nodes ({}): the variants were not measured on the same machine.",
            parts.join(", ")
        ));
    }
    if !k.cleaned_up {
        out.push(format!(
            "The run's objects were left in namespace {} (kept on request or cleanup failed): delete them with kubectl when done.",
            k.namespace
        ));
    }
    out
}
