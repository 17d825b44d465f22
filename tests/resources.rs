//! The resource sampler against processes of known cost: a parent that does nothing and
//! a child of it that holds 256 MiB it has written to and burns 1.5 s of CPU. Watching
//! the parent must see the child's memory and CPU (an engine's work is often in child
//! processes, as PostgreSQL's backends), and nothing more than that.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use dbbench::resources::{Monitor, Watch};

const CHILD: &str = r#"
import sys, time
block = bytearray(256 * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1
print("ready", flush=True)
sys.stdin.readline()
t = time.process_time()
while time.process_time() - t < 1.5:
    pass
print("done", flush=True)
sys.stdin.readline()
"#;

/// The parent starts the child with its own stdin and stdout, and waits.
const PARENT: &str = r#"
import subprocess, sys
subprocess.run([sys.executable, "-c", sys.argv[1]])
"#;

#[test]
fn the_sampler_sees_a_childs_memory_and_cpu_through_its_parent() {
    let mut parent = Command::new("python3")
        .args(["-c", PARENT, CHILD])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (Debian's python3 package)");
    let mut stdin = parent.stdin.take().unwrap();
    let mut lines = BufReader::new(parent.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");

    let watch = Watch { pid: parent.id(), what: "a test's python".into() };
    let monitor = Monitor::start(watch, Duration::from_millis(50));
    std::thread::sleep(Duration::from_millis(1500)); // the tree is listed again each second
    let mark = monitor.mark();
    use std::io::Write;
    writeln!(stdin).unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "done");
    let usage = monitor.since(mark).expect("the processes are readable");
    writeln!(stdin).unwrap();
    parent.wait().unwrap();

    eprintln!("{usage:?}");
    assert_eq!(usage.processes, 2, "parent and child");
    assert!((1.3..=1.9).contains(&usage.cpu_s), "1.5 CPU seconds burnt, measured {}", usage.cpu_s);
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let (peak, mean) = (mib(usage.memory_peak_bytes), mib(usage.memory_mean_bytes));
    // 256 MiB written, plus two Python interpreters (about 10 MiB each).
    assert!((256.0..320.0).contains(&peak), "peak {peak:.0} MiB");
    assert!((256.0..320.0).contains(&mean), "mean {mean:.0} MiB");
    assert_eq!(usage.memory_kind, "pss");
    assert!(usage.samples >= 10, "sampled every 50 ms for over 1.5 s: {}", usage.samples);
}
