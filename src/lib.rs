//! dbbench: runs declared workloads against real datastores and tells you which one fits
//! the job, with evidence.
//!
//! Data flows one way: `spec` (the workload file) -> `Plan` -> `data` (the dataset and its
//! exact ground truth) -> `runner` (driver calls, `metrics`, `quality`) -> `results`
//! (results.json). Reports and comparisons are made from results alone.

// Input and I/O errors are values with context, never panics (tests may unwrap).
#![warn(clippy::unwrap_used)]

pub mod cli;
pub mod compare;
pub mod data;
pub mod driver;
pub mod env;
pub mod error;
pub mod format;
pub mod fsutil;
pub mod metric;
pub mod metrics;
pub mod quality;
pub mod report;
pub mod resources;
pub mod results;
pub mod runner;
pub mod service;
pub mod spec;

pub use error::{Error, Result};
