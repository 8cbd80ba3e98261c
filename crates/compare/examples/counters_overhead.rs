//! What the always-on server counters cost the server: load windows against one running server,
//! alternately with and without what `compare` attaches to it during every measured window
//! (the resource sampler at its 100 ms interval, and the kernel counters without syscall
//! tracepoints), in pairs whose order alternates (A B, B A, …) so drift cancels out.
//!
//! ```sh
//! taskset -c 1 target/artifact/echo &   # any server; PORT=8080 by default
//! taskset -c 0 cargo run --release -p wasmbench-compare --example counters_overhead -- \
//!     $(pgrep -n echo) http://127.0.0.1:8080/ 10 5
//! ```
//! Arguments: server PID, URL, pairs (default 10), seconds per window (default 5).

use std::time::Duration;

use wasmbench_load::{Executor, Plan, RunOptions};
use wasmbench_runtime::ResourceSampler;

async fn window(plan: &Plan, pid: Option<u32>) -> f64 {
    let attached = pid.map(|pid| {
        (
            ResourceSampler::start(pid, Duration::from_millis(100)),
            wasmbench_counters::attach(pid, false),
        )
    });
    let summary = wasmbench_load::run(plan, RunOptions::default())
        .await
        .expect("load run");
    if let Some((sampler, counting)) = attached {
        let _ = sampler.stop();
        let _ = counting.finish();
    }
    (summary.counters.http_reqs - summary.counters.http_req_failed) as f64 / summary.duration_s
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(pid), Some(url)) = (args.first().and_then(|p| p.parse().ok()), args.get(1)) else {
        eprintln!("usage: counters_overhead PID URL [PAIRS] [SECONDS]");
        std::process::exit(2);
    };
    let pairs: usize = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(10);
    let secs: u64 = args.get(3).and_then(|p| p.parse().ok()).unwrap_or(5);
    let mut plan = Plan {
        executor: Executor::ConstantVus {
            vus: 100,
            duration: Duration::from_secs(secs),
        },
        ..Plan::default()
    };
    plan.request.url = url.clone();
    // Warm-up, not counted.
    window(&plan, None).await;
    let mut ratios = Vec::new();
    for i in 0..pairs {
        let (with, without) = if i % 2 == 0 {
            let w = window(&plan, Some(pid)).await;
            (w, window(&plan, None).await)
        } else {
            let wo = window(&plan, None).await;
            (window(&plan, Some(pid)).await, wo)
        };
        println!(
            "pair {}: with {with:.0} req/s, without {without:.0} req/s",
            i + 1
        );
        ratios.push(with / without);
    }
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(0.0, f64::max);
    println!(
        "throughput with counters / without: median {:.3} (pairs: min {lo:.3}, max {hi:.3}, n = {pairs})",
        median(ratios)
    );
}
