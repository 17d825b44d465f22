// Records the git commit dbbench is built from, for results.json.
//
// A build with no .git to ask (a container image's build context leaves it out) passes
// the commit in DBBENCH_COMMIT instead; it wins when set, so the image and the checkout
// it came from record the same commit.
use std::process::Command;

fn main() {
    let commit = std::env::var("DBBENCH_COMMIT")
        .ok()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=DBBENCH_COMMIT={commit}");
    println!("cargo:rerun-if-env-changed=DBBENCH_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
