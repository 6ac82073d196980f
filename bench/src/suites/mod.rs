//! The micro-benchmark suites. Each `run` measures its cases with the given [`Config`] and
//! adds one [`Line`] per case, with its baselines, to the [`Report`]. The bench targets
//! (`benches/*.rs`) and the `results` binary call the same functions.
//!
//! [`Config`]: crate::Config
//! [`Line`]: crate::Line
//! [`Report`]: crate::Report

pub mod frames;
pub mod hpack;
pub mod otlp;
pub mod wal;
