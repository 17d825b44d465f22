//! Recovery phases on the embedded engines, end to end through the real binary:
//! - the loss counter catches loss: qdrant-edge 0.7 does not replay its write-ahead log
//!   when it opens a shard, so every insert acknowledged since the shard last flushed is
//!   gone after the writing process is killed, and the phase must count each one;
//! - sqlite (WAL, synchronous = normal) loses nothing to a process kill;
//! - a backup damaged before the restore is reported as failed verification, with no
//!   restore time, and fails the restore_seconds requirement;
//! - a recovery phase's bad settings are refused with the file and what to do.

mod support;

use support::{assert_validate_refuses, dbbench, text};

fn workload(engines: &str, recovery: &str) -> String {
    format!(
        r#"
[workload]
name = "recovery-embedded"

[dataset]
source = "synthetic"
[dataset.synthetic]
docs = 1500
queries = 40
dim = 16

{engines}

[[phases]]
name = "recovery"
[phases.recovery]
{recovery}

[[requirements.slo]]
phase = "recovery"
metric = "lost_writes"
max = 0

[[requirements.slo]]
phase = "recovery"
metric = "restore_seconds"
max = 60
"#
    )
}

fn run(dir: &std::path::Path, body: &str) -> (std::process::Output, serde_json::Value, String) {
    let file = dir.join("recovery.toml");
    std::fs::write(&file, body).unwrap();
    let out = dir.join("out");
    let o = dbbench(
        &["run", file.to_str().unwrap(), "--no-progress", "--out", out.to_str().unwrap(), "--cache", "cache"],
        dir,
    );
    let json = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let report = std::fs::read_to_string(out.join("report.md")).unwrap_or_default();
    (o, json, report)
}

fn recovery<'a>(json: &'a serde_json::Value, engine: &str) -> &'a serde_json::Value {
    let e = json["engines"].as_array().unwrap().iter().find(|e| e["name"] == engine).unwrap();
    &e["phases"][0]["recovery"]
}

#[cfg(feature = "qdrant-edge")]
#[test]
fn the_loss_counter_counts_what_an_engine_loses_and_sqlite_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engines = r#"
[engines.sqlite]
[engines.sqlite.settings]
dir = "db/sqlite"
[engines.qdrant-edge]
[engines.qdrant-edge.settings]
dir = "db/qdrant-edge"
"#;
    let body = workload(engines, "write_rate = 300\nkill_after = \"1s\"\nrestart = false\nbackup = false");
    let (o, json, report) = run(dir.path(), &body);
    let msg = text(&o);
    assert!(!msg.contains("panicked"), "{msg}");
    assert_eq!(json["run"]["complete"], true, "{msg}");

    let q = &recovery(&json, "qdrant-edge")["crash"];
    let acked = q["acknowledged"].as_u64().unwrap();
    assert!(acked >= 100, "{q}");
    assert_eq!(q["lost"].as_u64(), Some(acked), "every acknowledged insert since the last flush is lost: {q}");
    assert_eq!(q["lost_ids"].as_array().unwrap().len(), 20, "the first 20 lost ids are kept: {q}");
    assert_eq!(q["records_after"], q["records_before"], "{q}");
    assert!(recovery(&json, "qdrant-edge")["durability"].as_str().unwrap().contains("does not replay"));

    let s = &recovery(&json, "sqlite")["crash"];
    assert!(s["acknowledged"].as_u64().unwrap() >= 100, "{s}");
    assert_eq!(s["lost"].as_u64(), Some(0), "a process kill loses no WAL commit: {s}");
    assert!(s["killed"].as_str().unwrap().contains("the engine runs embedded in it"), "{s}");
    assert!(recovery(&json, "sqlite")["notes"].as_array().is_none(), "restart and backup were not asked for");

    // The requirement fails qdrant-edge on what it lost; the run itself is complete.
    assert_eq!(o.status.code(), Some(0), "{msg}");
    assert!(report.contains("qdrant-edge does not fit"), "{report}");
    assert!(report.contains(&format!("| qdrant-edge | {acked} | {acked} |")), "{report}");
}

#[test]
fn a_damaged_backup_fails_verification_and_has_no_restore_time() {
    let dir = tempfile::tempdir().unwrap();
    let engines = "[engines.sqlite]\n[engines.sqlite.settings]\ndir = \"db/sqlite\"\n";
    let body = workload(engines, "crash = false\nrestart = true\ndamage_backup = \"truncate\"");
    let (o, json, report) = run(dir.path(), &body);
    let msg = text(&o);
    assert!(!msg.contains("panicked"), "{msg}");
    let r = recovery(&json, "sqlite");
    assert!(r["crash"].is_null());
    assert_eq!(r["restart"]["queries"], r["restart"]["queries_matched"], "{r}");
    let b = &r["backup"];
    assert_eq!(b["verified"], false, "{b}");
    assert!(b["restore_s"].is_null(), "a failed verification is no restore time: {b}");
    assert!(b["damaged"].as_str().unwrap().starts_with("backup.db cut from "), "{b}");
    assert!(b["backup_s"].as_f64().unwrap() > 0.0);
    assert!(report.contains("| NO |"), "{report}");
    assert!(report.contains("sqlite does not fit"), "{report}");
    assert!(report.contains("the restore did not verify"), "{report}");

    // The same backup undamaged verifies.
    let body = workload(engines, "crash = false\nrestart = false");
    let (_, json, _) = run(dir.path(), &body);
    let b = &recovery(&json, "sqlite")["backup"];
    assert_eq!(b["verified"], true, "{b}");
    assert!(b["restore_s"].as_f64().unwrap() > 0.0, "{b}");
}

#[test]
fn bad_recovery_settings_are_refused_with_the_file_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let engines = "[engines.sqlite]";
    let cases = [
        ("rate", workload(engines, "write_rate = 0"), "write_rate = 0 must be inserts per second above 0"),
        ("kill", workload(engines, "kill_after = \"10ms\""), "kill_after = 10ms must be between 100ms and 10m"),
        ("nothing", workload(engines, "crash = false\nrestart = false\nbackup = false"), "nothing to do"),
        ("damage", workload(engines, "damage_backup = \"shred\""), "use \"none\" or \"truncate\""),
        ("damage-no-backup", workload(engines, "backup = false\ndamage_backup = \"truncate\""), "damage_backup needs backup = true"),
        ("unknown", workload(engines, "kill_afterr = \"1s\""), "unknown field `kill_afterr`"),
        (
            "with-ops",
            workload(engines, "").replace("[phases.recovery]\n", "duration = \"1s\"\n[phases.recovery]\n"),
            "a recovery phase sets everything in [phases.recovery]",
        ),
        (
            "slo-elsewhere",
            workload(engines, "").replace(
                "[[requirements.slo]]\nphase = \"recovery\"\nmetric = \"lost_writes\"",
                "[[phases]]\nname = \"p\"\nrequests = 1\n[[phases.ops]]\nop = \"get\"\n\n[[requirements.slo]]\nphase = \"p\"\nmetric = \"lost_writes\"",
            ),
            "phase \"p\" is not a recovery phase ([phases.recovery])",
        ),
    ];
    let cases: Vec<(&str, String, &str)> = cases.into_iter().collect();
    assert_validate_refuses(dir.path(), &cases);
}
