//! The capacity-search options of `compare` and `load` (`--capacity`), declared once.

use std::time::Duration;

use clap::Args;
use wasmbench_load::Threshold;
use wasmbench_load::capacity::CapacityOptions;

/// Flags of the capacity search: the highest request rate the server sustains within an SLO.
#[derive(Debug, Clone, Default, Args)]
pub struct CapacityFlags {
    /// Search the highest offered rate that the server sustains within the SLO (open model:
    /// constant-arrival-rate steps, doubling then bisection) instead of one fixed load.
    #[arg(long)]
    pub capacity: bool,
    /// The SLO every step must meet, `METRIC=EXPR` (repeatable), e.g.
    /// 'http_req_duration=p(99)<20'; default: p(99) http_req_waiting < 10x its value at light load.
    #[arg(long = "slo", value_name = "METRIC=EXPR", requires = "capacity")]
    pub slo: Vec<String>,
    /// Length of each step of the search.
    #[arg(long, default_value = "3s", value_parser = wasmbench_vocab::duration::parse, requires = "capacity")]
    pub step_duration: Duration,
    /// First offered rate, req/s (default: the rate one VU reaches unloaded).
    #[arg(long, value_name = "REQ/S", requires = "capacity")]
    pub capacity_start: Option<u64>,
    /// Highest rate offered, req/s (default: none).
    #[arg(long, value_name = "REQ/S", requires = "capacity")]
    pub capacity_max: Option<u64>,
    /// Stop when the lowest failing rate is within this much of the highest passing one.
    #[arg(long, default_value = "5%", value_parser = parse_share, requires = "capacity")]
    pub resolution: f64,
    /// Most steps of one search.
    #[arg(long, default_value_t = 16, requires = "capacity")]
    pub max_steps: u32,
}

/// `5%` or `0.05`.
pub fn parse_share(s: &str) -> Result<f64, String> {
    let v = match s.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => s.trim().parse::<f64>(),
    }
    .map_err(|_| format!("`{s}` is not a share: write e.g. 5% or 0.05"))?;
    if v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(format!("`{s}` must be between 0% and 100%"))
    }
}

impl CapacityFlags {
    /// The search's options, or `None` without `--capacity`; `max_vus` bounds each step.
    pub fn to_options(&self, max_vus: Option<u64>) -> Result<Option<CapacityOptions>, String> {
        if !self.capacity {
            return Ok(None);
        }
        let slo = self
            .slo
            .iter()
            .map(|s| Threshold::parse_cli(s).map_err(|e| format!("--slo: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let defaults = CapacityOptions::default();
        let o = CapacityOptions {
            slo,
            start_rate: self.capacity_start.unwrap_or(0),
            max_rate: self.capacity_max.unwrap_or(0),
            step_duration: self.step_duration,
            resolution: self.resolution,
            max_steps: self.max_steps,
            max_vus: max_vus.unwrap_or(defaults.max_vus),
            ..defaults
        };
        o.validate().map_err(|e| e.to_string())?;
        Ok(Some(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        c: CapacityFlags,
    }

    fn parse(args: &[&str]) -> Result<CapacityFlags, String> {
        Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .map(|c| c.c)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn flags_become_options_with_one_syntax() {
        let f = parse(&[
            "--capacity",
            "--slo",
            "http_req_duration=p(99)<20",
            "--step-duration",
            "2s",
            "--capacity-start",
            "1000",
            "--resolution",
            "2%",
        ])
        .unwrap();
        let o = f.to_options(Some(300)).unwrap().unwrap();
        assert_eq!(o.slo[0].metric, "http_req_duration");
        assert_eq!(o.slo[0].expr, "p(99)<20");
        assert_eq!(o.step_duration, Duration::from_secs(2));
        assert_eq!((o.start_rate, o.max_rate, o.max_vus), (1000, 0, 300));
        assert!((o.resolution - 0.02).abs() < 1e-12);
        assert!(parse(&[]).unwrap().to_options(None).unwrap().is_none());
    }

    #[test]
    fn bad_values_say_what_to_write() {
        assert!(
            parse(&["--slo", "x=p(99)<1"]).is_err(),
            "--slo needs --capacity"
        );
        let e = parse(&["--capacity", "--resolution", "50 percent"]).unwrap_err();
        assert!(e.contains("write e.g. 5%"), "{e}");
        let f = parse(&["--capacity", "--slo", "http_req_waiting=p(99)<<3"]).unwrap();
        let e = f.to_options(None).unwrap_err();
        assert!(e.starts_with("--slo:"), "{e}");
        let f = parse(&[
            "--capacity",
            "--capacity-start",
            "500",
            "--capacity-max",
            "100",
        ])
        .unwrap();
        assert!(
            f.to_options(None)
                .unwrap_err()
                .contains("above the max rate")
        );
    }
}
