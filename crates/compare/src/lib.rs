//! Orchestrates repeated, warmed-up native-vs-Wasm comparisons.
#![deny(missing_docs)]
