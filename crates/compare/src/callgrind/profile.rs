//! What code a callgrind dump's instructions ran in: each function's self cost (its own
//! instructions, not its callees'), classified by its symbol and the object it was loaded from;
//! what libc and Rust's std did is charged to the code that called them (a `memset` inside
//! `calloc` inside a WASI read is that read's cost), along callgrind's call edges.

use std::collections::{BTreeMap, HashMap};

use wasmbench_report::{CodeCost, CodeKind};

/// One callgrind dump: self instructions (`Ir`) per object and function, the object each
/// function was first seen in, and the inclusive instructions of each caller → callee edge.
#[derive(Debug, Default)]
pub(crate) struct Profile {
    /// Self cost per (object, function).
    pub self_cost: HashMap<(String, String), u64>,
    /// The object of each function.
    pub object_of: HashMap<String, String>,
    /// Inclusive cost per (caller, callee) function.
    pub calls: HashMap<(String, String), u64>,
}

/// Parses one callgrind dump.
pub(crate) fn parse(dump: &str) -> Result<Profile, String> {
    let mut positions = 1usize;
    let mut ir_column = 0usize;
    // Callgrind compresses names: `fn=(7) name` defines id 7, a later `fn=(7)` refers to it.
    // Objects and functions have one id space each, shared with their `c…` forms.
    let mut objects = Names::default();
    let mut functions = Names::default();
    let (mut object, mut function, mut callee) = (String::new(), String::new(), String::new());
    let mut after_calls = false;
    let mut p = Profile::default();
    for line in dump.lines() {
        if let Some(v) = line.strip_prefix("positions:") {
            positions = v.split_whitespace().count().max(1);
        } else if let Some(v) = line.strip_prefix("events:") {
            ir_column = v
                .split_whitespace()
                .position(|e| e == "Ir")
                .ok_or_else(|| format!("the callgrind dump counts no Ir event ({})", v.trim()))?;
        } else if let Some(v) = line.strip_prefix("ob=") {
            object = objects.resolve(v);
        } else if let Some(v) = line.strip_prefix("cob=") {
            objects.resolve(v);
        } else if let Some(v) = line.strip_prefix("fn=") {
            function = functions.resolve(v);
            p.object_of
                .entry(function.clone())
                .or_insert_with(|| object.clone());
        } else if let Some(v) = line.strip_prefix("cfn=") {
            callee = functions.resolve(v);
        } else if line.starts_with("calls=") {
            // The next cost line is the call's inclusive cost, already counted in the callee.
            after_calls = true;
        } else if line.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '*')) {
            let ir = line
                .split_whitespace()
                .nth(positions + ir_column)
                .map(|t| t.parse().map_err(|_| format!("bad cost line `{line}`")))
                .transpose()?
                .unwrap_or(0u64);
            if std::mem::take(&mut after_calls) {
                if ir > 0 && callee != function {
                    *p.calls
                        .entry((function.clone(), callee.clone()))
                        .or_default() += ir;
                }
            } else if ir > 0 {
                *p.self_cost
                    .entry((object.clone(), function.clone()))
                    .or_default() += ir;
            }
        }
    }
    Ok(p)
}

/// How many callers up libc and std code is charged before what is left stays theirs
/// (`memset` ← `calloc` ← `__rdl_alloc_zeroed` ← `__rust_alloc_zeroed` ← `BytesMut::zeroed`).
const CHARGE_DEPTH: usize = 12;

/// A part of the split: what code, and the WASI interface for WASI host functions.
pub(crate) type Part = (CodeKind, Option<&'static str>);

impl Profile {
    /// The self costs summed by part, with [`CodeKind::Libc`] code charged to its callers in
    /// proportion to each caller's inclusive cost of the calls (gprof's rule), up to
    /// [`CHARGE_DEPTH`] callers up; what has no caller outside libc and std (thread start,
    /// the loader) stays libc's.
    pub(crate) fn by_code(&self) -> BTreeMap<Part, u64> {
        let part_of =
            |f: &str| classify(self.object_of.get(f).map(String::as_str).unwrap_or(""), f);
        let mut callers: HashMap<&str, Vec<(&str, u64)>> = HashMap::new();
        for ((caller, callee), &c) in &self.calls {
            callers.entry(callee).or_default().push((caller, c));
        }
        let mut out: BTreeMap<Part, f64> = BTreeMap::new();
        let mut pending: HashMap<&str, f64> = HashMap::new();
        for ((object, f), &c) in &self.self_cost {
            match classify(object, f) {
                (CodeKind::Libc, _) => *pending.entry(f).or_default() += c as f64,
                part => *out.entry(part).or_default() += c as f64,
            }
        }
        for _ in 0..CHARGE_DEPTH {
            let mut next: HashMap<&str, f64> = HashMap::new();
            for (f, amount) in pending {
                let list = callers.get(f).map(Vec::as_slice).unwrap_or(&[]);
                let all: u64 = list.iter().map(|(_, c)| c).sum();
                if all == 0 {
                    *out.entry((CodeKind::Libc, None)).or_default() += amount;
                    continue;
                }
                for &(g, c) in list {
                    let share = amount * c as f64 / all as f64;
                    match part_of(g) {
                        (CodeKind::Libc, _) => *next.entry(g).or_default() += share,
                        part => *out.entry(part).or_default() += share,
                    }
                }
            }
            pending = next;
        }
        let left: f64 = pending.values().sum();
        if left > 0.0 {
            *out.entry((CodeKind::Libc, None)).or_default() += left;
        }
        out.into_iter()
            .map(|(part, n)| (part, n.round() as u64))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

#[derive(Default)]
struct Names(HashMap<String, String>);

impl Names {
    /// `(id) name` defines and returns `name`; `(id)` returns what `id` was defined as; a
    /// bare `name` is itself.
    fn resolve(&mut self, v: &str) -> String {
        let v = v.trim();
        let Some(rest) = v.strip_prefix('(') else {
            return v.to_string();
        };
        let Some((id, name)) = rest.split_once(')') else {
            return v.to_string();
        };
        let name = name.trim();
        if name.is_empty() {
            self.0.get(id).cloned().unwrap_or_default()
        } else {
            self.0.insert(id.to_string(), name.to_string());
            name.to_string()
        }
    }
}

/// The code and, for WASI host functions, the interface a function of `object` ran.
pub(crate) fn classify(object: &str, function: &str) -> Part {
    let file = object.rsplit('/').next().unwrap_or(object);
    // Code in no file is code generated at run time: Wasmtime's compiled guest. A `.cwasm`
    // is the same code, precompiled and mapped from a file.
    if object.is_empty() || object == "???" || file.ends_with(".cwasm") {
        return (CodeKind::Guest, None);
    }
    if file.starts_with("libc.so")
        || file.starts_with("ld-linux")
        || file.starts_with("libm.so")
        || file.starts_with("libgcc_s")
        || file.starts_with("libstdc++")
        || file.starts_with("vgpreload")
    {
        return (CodeKind::Libc, None);
    }
    if file.starts_with("libwasmedge") {
        return if function.contains("Wasi") {
            (CodeKind::WasiHost, Some(WASMEDGE_WASI))
        } else {
            (CodeKind::Runtime, None)
        };
    }
    match owner_crate(function) {
        Some(c) if c.starts_with("wasmtime_wasi") => {
            (CodeKind::WasiHost, Some(interface(function)))
        }
        Some(c)
            if c.starts_with("wasmtime")
                || c.starts_with("cranelift")
                || c == "pulley_interpreter"
                || c == "wasmparser" =>
        {
            (CodeKind::Runtime, None)
        }
        Some(
            "tokio" | "mio" | "hyper" | "hyper_util" | "h2" | "http" | "http_body"
            | "http_body_util" | "httparse" | "futures" | "futures_util" | "futures_core" | "want",
        ) => (CodeKind::AsyncIo, None),
        Some("std" | "core" | "alloc" | "hashbrown" | "__rustc" | "bytes") => {
            (CodeKind::Libc, None)
        }
        _ => (CodeKind::Program, None),
    }
}

/// How WasmEdge's own WASI functions are named in the split (its symbols do not say which
/// interface).
const WASMEDGE_WASI: &str = "WasmEdge WASI";

/// Crates whose generic code runs other crates' types: a function of theirs belongs to the
/// first other crate named in its symbol (`core::ptr::drop_in_place<wasmtime_wasi::…>`).
const GLUE: [&str; 3] = ["core", "alloc", "std"];

/// The crate a Rust symbol's code belongs to: the first crate its path names, skipping
/// [`GLUE`] when another crate follows; `None` for a symbol that is not a Rust path.
fn owner_crate(symbol: &str) -> Option<&str> {
    let crates = path_starts(symbol);
    crates
        .iter()
        .find(|c| !GLUE.contains(c))
        .or(crates.first())
        .copied()
}

/// The first segment of every path in `symbol`, in order (`<a::B as c::D>::f` gives a, c).
fn path_starts(symbol: &str) -> Vec<&str> {
    let bytes = symbol.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        if is_ident(bytes[i]) && (i == 0 || !is_ident(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
            let continues_path = start >= 2 && &symbol[start - 2..start] == "::";
            if !continues_path && symbol[i..].starts_with("::") && !bytes[start].is_ascii_digit() {
                out.push(&symbol[start..i]);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The WASI interface a `wasmtime_wasi*` function serves: the trait it implements when it
/// names one (`<TcpWriteStream as wasmtime_wasi_io::streams::OutputStream>::write` is
/// `wasi:io/streams`), else its own path.
fn interface(symbol: &str) -> &'static str {
    let s = symbol.to_ascii_lowercase();
    if s.contains("wasmtime_wasi::p1") || s.contains("preview1") {
        return "wasi_snapshot_preview1";
    }
    if s.contains("wasmtime_wasi_http") {
        return "wasi:http";
    }
    let trait_part = s.split_once(" as ").map(|(_, t)| t);
    trait_part
        .and_then(interface_of_path)
        .or_else(|| interface_of_path(&s))
        .unwrap_or("other WASI")
}

fn interface_of_path(s: &str) -> Option<&'static str> {
    const KEYS: [(&[&str], &str); 8] = [
        (&["::poll", "pollable"], "wasi:io/poll"),
        (&["stream"], "wasi:io/streams"),
        (
            &["tcp", "udp", "socket", "network", "ip_name"],
            "wasi:sockets",
        ),
        (&["clock"], "wasi:clocks"),
        (&["random"], "wasi:random"),
        (&["filesystem", "preopen", "descriptor"], "wasi:filesystem"),
        (&["::cli", "stdio", "environment", "terminal"], "wasi:cli"),
        (&["::io::"], "wasi:io"),
    ];
    KEYS.iter()
        .find(|(keys, _)| keys.iter().any(|k| s.contains(k)))
        .map(|(_, name)| *name)
}

/// `dump`'s instructions summed by part ([`Profile::by_code`]).
pub(crate) fn by_code(dump: &str) -> Result<BTreeMap<Part, u64>, String> {
    Ok(parse(dump)?.by_code())
}

/// The load window's split less each part's idle instructions over the window's length,
/// largest first; parts that only ran while idle are left out.
pub(crate) fn window_split(
    loaded: &BTreeMap<Part, u64>,
    idle: &BTreeMap<Part, u64>,
    idle_to_window: f64,
) -> Vec<CodeCost> {
    let mut parts: Vec<CodeCost> = loaded
        .iter()
        .filter_map(|(&(code, interface), &ir)| {
            let idle = idle.get(&(code, interface)).copied().unwrap_or(0) as f64;
            let net = (ir as f64 - idle * idle_to_window).max(0.0) as u64;
            (net > 0).then(|| CodeCost {
                code,
                interface: interface.map(str::to_string),
                instructions: net,
            })
        })
        .collect();
    parts.sort_by_key(|p| std::cmp::Reverse(p.instructions));
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dump in callgrind's own shape: compressed names, calls whose inclusive cost must not
    /// count as the caller's, object switches, names referred to by id only, a chain of libc
    /// and std under a WASI read, one libc function shared by two callers, one with none.
    const DUMP: &str = "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\n\
        positions: line\nevents: Ir\nsummary: 1710\n\n\
        ob=(1) /usr/lib/x86_64-linux-gnu/libc.so.6\nfl=(1) ???\nfn=(1) write\n0 100\n\n\
        ob=(2) /usr/local/bin/wasmbench\nfl=(2) ???\n\
        fn=(2) <wasmtime_wasi::p2::tcp::TcpWriteStream as wasmtime_wasi_io::streams::OutputStream>::write\n\
        0 40\n+2 10\ncob=(1)\ncfi=(1)\ncfn=(1)\ncalls=1 0\n0 100\n\
        fn=(3) wasmtime::runtime::func::Func::call_impl\n0 200\n\
        cob=(1)\ncfn=(13) malloc\ncalls=2 0\n0 60\n\
        fn=(4) core::ptr::drop_in_place<wasmtime_wasi::p2::host::tcp::TcpSocket>\n0 5\n\
        fn=(5) tokio::runtime::scheduler::current_thread::CoreGuard::block_on\n0 20\n\
        cob=(1)\ncfn=(13)\ncalls=1 0\n0 30\n\
        ob=(3) ???\nfl=(3) ???\nfn=(6) 0x000000000a01b2c0\n0 700\n\
        ob=(2)\nfl=(2)\nfn=(3)\n0 100\n\
        ob=(1)\nfl=(1)\nfn=(7) clone\n0 25\nfn=(8) memset\n0 400\n\
        fn=(9) calloc\n0 10\ncfn=(8)\ncalls=1 0\n0 400\nfn=(13)\n0 90\n\
        ob=(2)\nfl=(2)\nfn=(10) bytes::bytes_mut::BytesMut::zeroed\n0 2\n\
        cob=(1)\ncfn=(9)\ncalls=1 0\n0 410\n\
        fn=(11) <wasmtime_wasi::p2::tcp::TcpReader as wasmtime_wasi_io::streams::InputStream>::read\n\
        0 8\ncfn=(10)\ncalls=1 0\n0 412\n\
        totals: 1710\n";

    #[test]
    fn self_costs_leave_out_what_a_call_cost_and_resolve_compressed_names() {
        let p = parse(DUMP).unwrap();
        let get = |o: &str, f: &str| p.self_cost.get(&(o.to_string(), f.to_string())).copied();
        assert_eq!(
            get("/usr/lib/x86_64-linux-gnu/libc.so.6", "write"),
            Some(100)
        );
        assert_eq!(
            get(
                "/usr/local/bin/wasmbench",
                "<wasmtime_wasi::p2::tcp::TcpWriteStream as wasmtime_wasi_io::streams::OutputStream>::write"
            ),
            Some(50)
        );
        assert_eq!(
            get(
                "/usr/local/bin/wasmbench",
                "wasmtime::runtime::func::Func::call_impl"
            ),
            Some(300)
        );
        assert_eq!(get("???", "0x000000000a01b2c0"), Some(700));
        assert_eq!(
            get("/usr/lib/x86_64-linux-gnu/libc.so.6", "malloc"),
            Some(90)
        );
        assert_eq!(p.self_cost.values().sum::<u64>(), 1710);
        assert_eq!(p.calls[&("calloc".to_string(), "memset".to_string())], 400);
    }

    #[test]
    fn libc_and_std_are_charged_to_their_callers() {
        let split = by_code(DUMP).unwrap();
        assert_eq!(split[&(CodeKind::Guest, None)], 700);
        // 60 of malloc's 90 were called from Wasmtime, 30 from tokio.
        assert_eq!(split[&(CodeKind::Runtime, None)], 360);
        assert_eq!(split[&(CodeKind::AsyncIo, None)], 50);
        // write's 100, and memset ← calloc ← BytesMut::zeroed (400 + 10 + 2) under the read.
        assert_eq!(
            split[&(CodeKind::WasiHost, Some("wasi:io/streams"))],
            50 + 100 + 8 + 412
        );
        assert_eq!(split[&(CodeKind::WasiHost, Some("wasi:sockets"))], 5);
        // Nothing called clone: it stays libc's.
        assert_eq!(split[&(CodeKind::Libc, None)], 25);
        assert_eq!(split.values().sum::<u64>(), 1710);
    }

    #[test]
    fn functions_are_classified_by_their_crate_object_and_interface() {
        let bin = "/usr/local/bin/wasmbench";
        for (f, want) in [
            (
                "wasmtime_wasi_io::poll::<impl wasmtime_wasi_io::bindings::wasi::io::poll::Host for T>::poll::{{closure}}",
                (CodeKind::WasiHost, Some("wasi:io/poll")),
            ),
            (
                "wasmtime_wasi::p1::<impl wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1 for T>::fd_read",
                (CodeKind::WasiHost, Some("wasi_snapshot_preview1")),
            ),
            (
                "wasmtime_wasi::p2::host::clocks::<impl Host for T>::now",
                (CodeKind::WasiHost, Some("wasi:clocks")),
            ),
            (
                "alloc::raw_vec::RawVec<T,A>::grow_one",
                (CodeKind::Libc, None),
            ),
            (
                "wasmbench_echo::session::Session::receive",
                (CodeKind::Program, None),
            ),
            // A stripped binary's function is the program's, not generated code.
            ("0x0000000000012345", (CodeKind::Program, None)),
        ] {
            assert_eq!(classify(bin, f), want, "{f}");
        }
        assert_eq!(
            classify("/tmp/cache/ab12.cwasm", "wasm[0]::function[3]"),
            (CodeKind::Guest, None)
        );
    }

    #[test]
    fn the_window_split_takes_off_each_parts_idle_rate() {
        let loaded = BTreeMap::from([
            ((CodeKind::Guest, None), 1000),
            ((CodeKind::Runtime, None), 300),
        ]);
        let idle = BTreeMap::from([
            ((CodeKind::Runtime, None), 100),
            ((CodeKind::Libc, None), 50),
        ]);
        let split = window_split(&loaded, &idle, 2.5);
        assert_eq!(split.len(), 2);
        assert_eq!(
            (split[0].code, split[0].instructions),
            (CodeKind::Guest, 1000)
        );
        assert_eq!(
            (split[1].code, split[1].instructions),
            (CodeKind::Runtime, 50)
        );
    }
}
