//! Memory stays flat over a long run: RSS of this process (engine + in-process echo server)
//! after 10 s and after 60 s of 100-VU keep-alive load. A benchmark, not part of the default
//! run: `cargo test -p wasmbench-load --release --test memory -- --ignored --nocapture`.

mod common;

use std::time::Duration;

use common::*;
use wasmbench_echo::config::Mode;
use wasmbench_load::{RunOptions, run};

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[test]
#[ignore = "runs for 60 s; a benchmark"]
fn rss_after_10s_and_60s_of_load() {
    let addr = echo(Mode::Concurrent);
    let mut p = plan(format!("http://{addr}/"), 100, 61.0);
    p.request.method = "POST".into();
    p.request.body = b"hello".to_vec();
    let (mut at10, mut at60, mut reqs_at_10) = (0, 0, 0);
    let s = rt().block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let opts = RunOptions {
            progress: Some(tx),
            ..RunOptions::default()
        };
        let h = tokio::spawn(async move { run(&p, opts).await });
        while let Ok(Some(pr)) = tokio::time::timeout(Duration::from_secs(90), rx.recv()).await {
            if pr.point.t_s == 10 {
                at10 = rss_kb();
                reqs_at_10 = pr.requests;
            }
            if pr.point.t_s == 60 {
                at60 = rss_kb();
            }
        }
        h.await.unwrap().unwrap()
    });
    println!(
        "RSS after 10 s: {at10} kB ({reqs_at_10} requests); after 60 s: {at60} kB ({} requests)",
        s.counters.http_reqs
    );
    assert!(at10 > 0 && at60 > 0);
    assert!(
        at60 <= at10 + at10 / 5 + 8 * 1024,
        "RSS grew from {at10} kB to {at60} kB"
    );
}
