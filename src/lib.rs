//! dbbench: runs declared workloads against real datastores and tells you which one fits
//! the job, with evidence.
//!
//! Data flows one way: `spec` (the workload file) -> `Plan` -> `data` (the dataset and its
//! exact ground truth) -> `runner` (driver calls, `metrics`, `quality`) -> `results`
//! (results.json). Reports and comparisons are made from results alone.

pub mod cli;
pub mod data;
pub mod driver;
pub mod error;
pub mod metrics;
pub mod quality;
pub mod report;
pub mod results;
pub mod runner;
pub mod spec;

pub use error::{Error, Result};
