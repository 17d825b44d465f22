//! Recovery phases in reports: per engine, what a crash under inserts lost, how soon the
//! engine answered again, and whether its own backup gave back what it held. The same
//! tables in report.md and report.html.

use super::streaming::Table;
use crate::format;
use crate::results::{RecoveryResult, RunResults};

/// One recovery phase and the engines that ran it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecoveryView {
    pub phase: String,
    pub summary: String,
    pub tables: Vec<Table>,
    /// What each engine promises, and why a part was not measured.
    pub notes: Vec<String>,
}

/// Every recovery phase of the run, in the order the phases ran.
pub fn views(r: &RunResults) -> Vec<RecoveryView> {
    let mut phases: Vec<(String, Vec<(&str, &RecoveryResult)>)> = Vec::new();
    for e in &r.engines {
        for p in &e.phases {
            let Some(rec) = &p.recovery else { continue };
            match phases.iter_mut().find(|(name, _)| *name == p.name) {
                Some((_, engines)) => engines.push((&e.name, rec)),
                None => phases.push((p.name.clone(), vec![(&e.name, rec)])),
            }
        }
    }
    phases.into_iter().map(|(phase, engines)| view(phase, &engines)).collect()
}

fn secs(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

fn view(phase: String, engines: &[(&str, &RecoveryResult)]) -> RecoveryView {
    let summary = engines
        .iter()
        .find_map(|(_, r)| r.crash.as_ref())
        .map(|c| {
            format!(
                "Inserts at {}/s from {} workers of a separate process; {:.1} s in, the engine was killed with \
                 SIGKILL, started again, and every insert was read back. \"Lost\" counts inserts the engine had \
                 acknowledged that were not there. The restart is timed from the start over the data until the \
                 first verification query returns the ids it returned before the stop; the restore is verified \
                 by the record count and the verification queries' ids.",
                c.write_rate, c.write_concurrency, c.kill_after_s
            )
        })
        .unwrap_or_else(|| {
            "The restart is timed from the start over the data until the first verification query returns the \
             ids it returned before the stop; the restore is verified by the record count and the \
             verification queries' ids."
                .into()
        });
    let mut crash = Table {
        title: "Crash under inserts, and restart".into(),
        header: [
            "engine",
            "acknowledged",
            "lost",
            "in flight",
            "of them found",
            "back after the kill s",
            "restart s",
            "queries same after restart",
            "records",
        ]
        .map(String::from)
        .to_vec(),
        rows: Vec::new(),
        text_last: false,
    };
    let mut backup = Table {
        title: "Backup and restore".into(),
        header: ["engine", "backup s", "size", "restore s", "verified", "tool", "check"].map(String::from).to_vec(),
        rows: Vec::new(),
        text_last: true,
    };
    let mut notes = Vec::new();
    for (name, r) in engines {
        notes.push(format!("{name}: {}", r.durability));
        for n in &r.notes {
            notes.push(format!("{name}: {n}"));
        }
        let c = r.crash.as_ref();
        let s = r.restart.as_ref();
        if c.is_some() || s.is_some() {
            crash.rows.push(vec![
                name.to_string(),
                opt(c.map(|c| c.acknowledged)),
                opt(c.map(|c| c.lost)),
                opt(c.map(|c| c.unacknowledged)),
                opt(c.map(|c| c.unacknowledged_found)),
                opt(c.map(|c| secs(c.recovery_s))),
                opt(s.map(|s| secs(s.seconds))),
                opt(s.map(|s| format!("{} of {}", s.queries_matched, s.queries))),
                opt(s.and_then(|s| s.records)),
            ]);
        }
        if let Some(b) = &r.backup {
            backup.rows.push(vec![
                name.to_string(),
                secs(b.backup_s),
                opt(b.size_bytes.map(|n| format!("{:.1} MiB", format::to_mib(n)))),
                opt(b.restore_s.map(secs)),
                if b.verified { "yes".into() } else { "NO".into() },
                b.tool.clone(),
                match &b.damaged {
                    Some(d) => format!("backup damaged on purpose ({d}); {}", b.verification),
                    None => b.verification.clone(),
                },
            ]);
        }
    }
    let tables = [crash, backup].into_iter().filter(|t| !t.rows.is_empty()).collect();
    RecoveryView { phase, summary, tables, notes }
}
