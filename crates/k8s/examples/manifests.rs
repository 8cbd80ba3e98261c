//! Renders every manifest wasmbench generates into a directory (used by
//! `scripts/validate-manifests.sh`).
//!
//! Usage: `cargo run -p wasmbench-k8s --example manifests -- OUT_DIR`
//! Writes one subdirectory per configuration: all variants on one node, and all variants with
//! distributed load kept apart from the servers.

use std::path::PathBuf;
use std::process::ExitCode;

use wasmbench_k8s::Variant;
use wasmbench_k8s::manifests::{self, RunSpec};

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: manifests OUT_DIR");
        return ExitCode::from(2);
    };
    let mut single = RunSpec::new("validate", Variant::ALL.to_vec());
    single.images.spin = Some("localhost/wasmbench/echo-spin:0.1.0".to_owned());
    let mut spread = single.clone();
    spread.run_id = "validate-spread".to_owned();
    spread.namespace = "wasmbench-validate-spread".to_owned();
    spread.load.vus = 96;
    spread.load.parallelism = 4;
    spread.separate_load = true;
    for (name, spec) in [("single-node", &single), ("multi-node", &spread)] {
        match manifests::write_dir(spec, &out.join(name)) {
            Ok(paths) => {
                for p in paths {
                    println!("{}", p.display());
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
