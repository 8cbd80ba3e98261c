//! Instructions per request under valgrind's callgrind, in a pass of its own after a variant's
//! measured runs: a count that repeats to a few parts per million where time varies by percent,
//! and that needs no hardware counters.
//!
//! The server is started under `valgrind --tool=callgrind` and warmed up. Its counters are then
//! zeroed (`callgrind_control -z`) and dumped (`-d`) around an idle window and around a window
//! of load by one VU; each dump's `summary:` is the instructions of every thread. The idle
//! window's rate (timer and epoch threads, which count by time, not by request) is taken off
//! the load window's count before dividing by its requests. One VU keeps requests in flight at
//! the zero and the dump to at most one of thousands. The same dumps split the count by the
//! code it ran in ([`profile`]): guest, WASI host functions by interface, the runtime, the
//! async runtime, libc and std, the rest of the program.

mod profile;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use wasmbench_load::RunOptions;
use wasmbench_report::CallgrindCount;

use crate::config::CompareConfig;
use crate::launcher::Launcher;
use crate::outcome::{Options, VariantOutcome};
use crate::session::{launch_spec, plan_for, stop};

/// Load before the counters are zeroed: first requests fault in code and data.
const WARMUP: Duration = Duration::from_secs(2);
/// The counted window.
const WINDOW: Duration = Duration::from_secs(5);
/// Requests per second in the counted window, one VU: each arrives to an idle server, so
/// the code a request runs does not depend on how fast the machine is at the time (a closed
/// loop's requests meet the server's event loop at varying points, and the count moved by 1%
/// between runs), and the idle rate taken off is the rate of the regime measured. Well below
/// what a server does under valgrind (over 1,000 requests/s for our Wasm echo).
const PACED_RATE: u32 = 200;
/// The idle window, whose instructions per second are the server's cost without requests.
const IDLE: Duration = Duration::from_secs(2);
/// Request slots the server is told to expect: the pass's one VU, with room for instances
/// still being torn down (the socket host's pool under valgrind has 8 too).
const IN_FLIGHT: usize = 8;
/// Start-up under valgrind (a JIT host compiles tens of times slower).
const STARTUP: Duration = Duration::from_secs(300);

/// `valgrind --version`, or how to get it.
pub(crate) fn valgrind_version() -> Result<String, String> {
    let out = Command::new("valgrind")
        .arg("--version")
        .output()
        .map_err(|e| {
            format!("valgrind cannot be run ({e}): install it (`apt install valgrind`) or leave out --callgrind")
        })?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Counts `v`'s instructions per request; `Err` says why not (the variant's measured figures
/// stand either way).
pub(crate) async fn count(
    cfg: &CompareConfig,
    opts: &Options,
    launcher: &dyn Launcher,
    v: &VariantOutcome,
    server_cpus: Option<&Vec<usize>>,
) -> Result<CallgrindCount, String> {
    let valgrind = valgrind_version()?;
    let dir = std::env::temp_dir().join(format!(
        "wasmbench-callgrind-{}-{}",
        std::process::id(),
        v.resolved.name
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let result = count_in(cfg, opts, launcher, v, server_cpus, &dir, valgrind).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn count_in(
    cfg: &CompareConfig,
    opts: &Options,
    launcher: &dyn Launcher,
    v: &VariantOutcome,
    server_cpus: Option<&Vec<usize>>,
    dir: &Path,
    valgrind: String,
) -> Result<CallgrindCount, String> {
    let out_base = dir.join("callgrind.out");
    let mut spec = launch_spec(cfg, opts, v, server_cpus);
    spec.wrapper = vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        // JIT-compiled code (Wasmtime's) is written at run time: valgrind must notice it.
        "--smc-check=all".into(),
        // A `--native-cmd` is `sh -c`: follow its exec into the server.
        "--trace-children=yes".into(),
        "-q".into(),
        format!("--callgrind-out-file={}", out_base.display()),
    ];
    spec.startup_timeout = STARTUP.max(cfg.startup_timeout);
    // Instructions do not depend on the time a server is given, and valgrind needs all of it.
    spec.cpu_limit = None;
    // One VU (below); a few slots more for an instance still being torn down.
    spec.max_in_flight = Some(IN_FLIGHT);
    let server = launcher.launch(&v.resolved, spec).await?;
    let pid = server.pid();
    let url = format!("{}{}", server.url(), cfg.load.path);
    let mut one_vu = cfg.clone();
    one_vu.load.vus = 1;
    one_vu.load.executor = "constant-vus".into();
    let mut paced = one_vu.clone();
    paced.load.executor = "constant-arrival-rate".into();
    paced.load.rate = Some(PACED_RATE);
    let window = async {
        load(&one_vu, opts, &url, WARMUP).await?;
        control(pid, "-z")?;
        let idle_started = std::time::Instant::now();
        tokio::time::sleep(IDLE).await;
        control(pid, "-d")?;
        let idle_s = idle_started.elapsed().as_secs_f64();
        control(pid, "-z")?;
        let load_started = std::time::Instant::now();
        let requests = load(&paced, opts, &url, WINDOW).await?;
        control(pid, "-d")?;
        Ok::<_, String>((idle_s, load_started.elapsed().as_secs_f64(), requests))
    }
    .await;
    let stopped = stop(server).await;
    let (idle_s, load_s, requests) = window?;
    stopped?;
    let (idle_dump, idle) = read_dump(&out_base, 1)?;
    let dump = PathBuf::from(format!("{}.2", out_base.display()));
    let (loaded_dump, loaded) = read_dump(&out_base, 2)?;
    let idle_per_s = idle as f64 / idle_s.max(1e-3);
    let instructions = (loaded as f64 - idle_per_s * load_s).max(0.0) as u64;
    let by_code = profile::window_split(
        &profile::by_code(&loaded_dump)?,
        &profile::by_code(&idle_dump)?,
        load_s / idle_s.max(1e-3),
    );
    let profile_file = match &opts.raw_dir {
        Some(raw) => {
            let name = format!("{}.callgrind.out", v.resolved.name);
            std::fs::copy(&dump, raw.join(&name))
                .map_err(|e| format!("cannot write {}: {e}", raw.join(&name).display()))?;
            Some(name)
        }
        None => None,
    };
    Ok(CallgrindCount {
        instructions,
        requests,
        idle_instructions_per_s: idle_per_s.round() as u64,
        vus: 1,
        rate_per_s: Some(PACED_RATE),
        valgrind,
        profile_file,
        by_code,
    })
}

/// Runs `cfg`'s request against `url` for `duration`; the completed requests.
async fn load(
    cfg: &CompareConfig,
    opts: &Options,
    url: &str,
    duration: Duration,
) -> Result<u64, String> {
    let plan = plan_for(cfg, url.to_string(), duration).map_err(|e| e.to_string())?;
    let s = wasmbench_load::run(
        &plan,
        RunOptions {
            cancel: opts.cancel.child_token(),
            ..RunOptions::default()
        },
    )
    .await
    .map_err(|e| format!("load under callgrind failed: {e}"))?;
    if s.partial {
        return Err("interrupted".into());
    }
    if s.counters.http_reqs == 0 || s.counters.http_req_failed == s.counters.http_reqs {
        return Err(format!("no successful request to {url} under callgrind"));
    }
    Ok(s.counters.http_reqs)
}

/// `callgrind_control <flag> <pid>`: `-z` zeroes the counters, `-d` dumps them.
fn control(pid: u32, flag: &str) -> Result<(), String> {
    let out = Command::new("callgrind_control")
        .arg(flag)
        .arg(pid.to_string())
        .output()
        .map_err(|e| format!("callgrind_control cannot be run ({e}); it comes with valgrind"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "callgrind_control {flag} {pid} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Dump number `n` (`<base>.<n>`) and its instruction count.
fn read_dump(base: &Path, n: u32) -> Result<(String, u64), String> {
    let dump = PathBuf::from(format!("{}.{n}", base.display()));
    let text = std::fs::read_to_string(&dump)
        .map_err(|e| format!("callgrind wrote no dump at {} ({e})", dump.display()))?;
    let summary = summary_of(&text)
        .ok_or_else(|| format!("the callgrind dump {} has no summary line", dump.display()))?;
    Ok((text, summary))
}

/// The `summary: <Ir>` line of a callgrind dump.
fn summary_of(dump: &str) -> Option<u64> {
    dump.lines()
        .find_map(|l| l.strip_prefix("summary:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_is_the_instruction_count() {
        let dump = "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\npid: 42\n\
                    events: Ir\nsummary: 4436825\n\nfn=(1) main\n0 12\ntotals: 4436827\n";
        assert_eq!(summary_of(dump), Some(4_436_825));
        assert_eq!(summary_of("events: Ir\n"), None);
    }
}
