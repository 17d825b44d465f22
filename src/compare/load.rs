//! The two sides of a comparison, read from results files: what each side is made of,
//! the check that both measured the same experiment, and every measured run grouped by
//! engine x phase x op.
//!
//! Reading only: nothing here judges a number, and nothing writes to either side.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Serialize;

use crate::driver::OpKind;
use crate::error::{Error, Result};
use crate::results::{OpResult, OpStatus, RunResults, RESULTS_FILE};

/// The runs of one side: a results.json, a run folder, or a folder of either.
pub fn load_side(path: &Path) -> Result<Vec<(PathBuf, RunResults)>> {
    if path.is_file() {
        return Ok(vec![(path.to_path_buf(), RunResults::read(path)?)]);
    }
    if !path.is_dir() {
        return Err(Error::Input(format!("{}: no such file or folder", path.display())));
    }
    let own = path.join(RESULTS_FILE);
    if own.is_file() {
        return Ok(vec![(own.clone(), RunResults::read(&own)?)]);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::Input(format!("cannot read {}: {e}", path.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut runs = Vec::new();
    for entry in entries {
        let file = if entry.is_dir() { entry.join(RESULTS_FILE) } else { entry.clone() };
        let is_json = file.extension().is_some_and(|e| e == "json");
        if file.is_file() && is_json {
            runs.push((file.clone(), RunResults::read(&file)?));
        }
    }
    if runs.is_empty() {
        return Err(Error::Input(format!(
            "{}: holds no {RESULTS_FILE}, no run folders and no results files",
            path.display()
        )));
    }
    Ok(runs)
}

/// What each side was made of.
#[derive(Debug, Clone, Serialize)]
pub struct SideInfo {
    pub path: String,
    /// The results files read.
    pub files: Vec<String>,
    pub workload: String,
    pub workload_sha256: String,
    pub dataset: String,
    pub dataset_fingerprint: String,
    pub machines: Vec<String>,
}

pub(super) fn side_info(path: &Path, runs: &[(PathBuf, RunResults)]) -> SideInfo {
    let first = &runs[0].1.run;
    let machines: BTreeSet<String> = runs
        .iter()
        .map(|(_, r)| {
            let m = &r.run.machine;
            let memory = m.memory_bytes.map(|b| format!(", {} memory", crate::format::gib(b))).unwrap_or_default();
            format!("{} ({} cpus, {}{memory})", m.cpu_model.as_deref().unwrap_or("unknown cpu"), m.cpus, m.arch)
        })
        .collect();
    SideInfo {
        path: path.display().to_string(),
        files: runs.iter().map(|(f, _)| f.display().to_string()).collect(),
        workload: first.workload.name.clone(),
        workload_sha256: first.workload.sha256.clone(),
        dataset: first.dataset.name.clone(),
        dataset_fingerprint: first.dataset.fingerprint.clone(),
        machines: machines.into_iter().collect(),
    }
}

/// Refuse runs that did not measure the same thing: a different workload file or dataset
/// makes every difference meaningless. With `other_workload` (an A/B run of two
/// configurations) the workload files may differ, but the dataset may not.
pub(super) fn check_same_experiment(all: &[(&str, &Path, &RunResults)], other_workload: bool) -> Result<()> {
    let (side0, file0, first) = all[0];
    for &(side, file, run) in &all[1..] {
        // The workload is checked against the first run of the same side when the sides
        // may differ, against the very first run otherwise.
        let (wside, wfile, wfirst) =
            if other_workload { all.iter().copied().find(|(s, ..)| *s == side).unwrap_or(all[0]) } else { all[0] };
        let (a, b) = (&wfirst.run.workload, &run.run.workload);
        if a.sha256 != b.sha256 {
            return Err(Error::Input(format!(
                "different workloads: {wside} {} ran workload {:?} ({}, sha256 {}) but {side} {} ran {:?} ({}, sha256 {}); \
                 compare runs of the same workload file, or regenerate the baseline from the current one",
                wfile.display(),
                a.name,
                a.file,
                short(&a.sha256),
                file.display(),
                b.name,
                b.file,
                short(&b.sha256)
            )));
        }
        let (a, b) = (&first.run.dataset, &run.run.dataset);
        if a.fingerprint != b.fingerprint {
            return Err(Error::Input(format!(
                "different datasets: {side0} {} measured dataset {:?} ({} docs, fingerprint {}) but {side} {} measured {:?} \
                 ({} docs, fingerprint {}){}; compare runs on the same data",
                file0.display(),
                a.name,
                a.docs,
                short(&a.fingerprint),
                file.display(),
                b.name,
                b.docs,
                short(&b.fingerprint),
                match (&a.fallback_reason, &b.fallback_reason) {
                    (None, Some(r)) | (Some(r), None) => format!(" (one side used synthetic data: {r})"),
                    _ => String::new(),
                }
            )));
        }
    }
    Ok(())
}

/// The first 12 characters of a hash, as people quote them.
pub(super) fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}

/// One measured run of one op.
pub(super) struct Measurement<'a> {
    pub op: &'a OpResult,
    pub elapsed_s: f64,
    /// An earlier phase of the run wrote to the corpus, so its quality is scored against
    /// data that no longer matches (and that differs from run to run with the number of
    /// writes done): not comparable.
    pub corpus_changed: bool,
}

/// Every measured run of one engine x phase x op on one side.
pub(super) struct Group<'a> {
    pub kind: OpKind,
    pub measured: Vec<Measurement<'a>>,
    /// Why the op did not run (unsupported), when it did not.
    pub unsupported: Option<String>,
}

/// engine, phase, op label.
pub(super) type Key = (String, String, String);

pub(super) fn key_name(k: &Key) -> String {
    format!("{} / {} / {}", k.0, k.1, k.2)
}

/// Group every run's ops by engine x phase x op label. Incomplete phases are left out
/// with a note: a phase cut short measured something else than the one planned.
pub(super) fn group<'a>(
    side: &str,
    runs: &'a [(PathBuf, RunResults)],
    notes: &mut Vec<String>,
) -> IndexMap<Key, Group<'a>> {
    let mut groups: IndexMap<Key, Group<'a>> = IndexMap::new();
    for (file, run) in runs {
        if !run.run.complete {
            notes.push(format!(
                "{side} {}: run incomplete ({})",
                file.display(),
                run.run.incomplete_reason.as_deref().unwrap_or("no reason given")
            ));
        }
        for engine in &run.engines {
            if engine.phases.is_empty() {
                if let Some(reason) = &engine.reason {
                    notes.push(format!(
                        "{side} {}: engine {} {:?}: {reason}",
                        file.display(),
                        engine.name,
                        engine.status
                    ));
                }
            }
            let mut wrote = false;
            for phase in &engine.phases {
                let corpus_changed = wrote;
                wrote |= phase.ops.iter().any(|o| o.count > 0 && o.op.is_write());
                if !phase.complete {
                    notes.push(format!(
                        "{side} {}: {} / {} (repetition {}) is incomplete and left out: {}",
                        file.display(),
                        engine.name,
                        phase.name,
                        phase.repetition,
                        phase.note.as_deref().unwrap_or("")
                    ));
                    continue;
                }
                for op in &phase.ops {
                    let key = (engine.name.clone(), phase.name.clone(), op.label.clone());
                    let g = groups.entry(key).or_insert_with(|| Group {
                        kind: op.op,
                        measured: Vec::new(),
                        unsupported: None,
                    });
                    if op.status == OpStatus::Ok {
                        g.measured.push(Measurement { op, elapsed_s: phase.elapsed_s, corpus_changed });
                    } else {
                        g.unsupported = Some(op.note.clone().unwrap_or_else(|| op.status.to_string()));
                    }
                }
            }
        }
    }
    groups
}
