//! Load engine with k6 metric semantics: per-phase HTTP timing, executors, checks, thresholds, HDR histograms.
#![deny(missing_docs)]
