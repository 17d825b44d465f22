//! What the command-line tests share: running the built `dbbench` in a folder, its whole
//! output as one string, and the check every refused workload must pass.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Run the `dbbench` binary of this build with `args`, in `cwd`.
pub fn dbbench(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dbbench")).args(args).current_dir(cwd).output().expect("run dbbench")
}

/// Standard output and standard error, in that order.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Each case `(name, workload, expected)` is written to `<dir>/<name>.toml`; `dbbench
/// validate` must refuse it with exit code 2, without a panic, in a message that names
/// the file and says `expected`.
pub fn assert_validate_refuses(dir: &Path, cases: &[(&str, String, &str)]) {
    for (name, body, expected) in cases {
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(&file, body).unwrap();
        let out = dbbench(&["validate", file.to_str().unwrap()], dir);
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {msg}");
        assert!(msg.contains(&format!("{name}.toml")), "{name}: the message names the file: {msg}");
        assert!(msg.contains(expected), "{name}: expected {expected:?} in: {msg}");
        assert!(!msg.contains("panicked"), "{name}: {msg}");
    }
}
