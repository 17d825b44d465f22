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

/// A whole run on sqlite (embedded, so dbbench's own process is watched): every stage
/// has a usage, the engine-wide metrics read them and the driver's size, and a bound on
/// them decides the verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_measures_each_stage_and_judges_resource_bounds() {
    use dbbench::metric::Metric;
    use dbbench::report::recommend;
    let dir = tempfile::tempdir().unwrap();
    let workload = |bound: &str| {
        format!(
            r#"
[workload]
name = "resources"
seed = 1
[dataset]
source = "synthetic"
[dataset.synthetic]
docs = 2000
queries = 20
dim = 16
[engines.sqlite]
[[phases]]
name = "knn"
requests = 300
concurrency = 2
[[phases.ops]]
op = "knn"
k = 10
[requirements]
[[requirements.slo]]
metric = "memory_peak_mib"
max = {bound}
"#
        )
    };
    let run = |bound: &'static str, out: &'static str| {
        let file = dir.path().join(format!("{out}.toml"));
        std::fs::write(&file, workload(bound)).unwrap();
        let plan = dbbench::spec::load_plan(&file, &dbbench::spec::Overrides::default()).unwrap();
        let opts = dbbench::runner::RunOptions {
            run_id: out.into(),
            out_dir: dir.path().join(out),
            cache_dir: dir.path().join("cache"),
            progress: false,
            repeat: 1,
            shard: None,
            raw_latencies: false,
        };
        async move {
            let summary = dbbench::runner::run(plan, opts, tokio_util::sync::CancellationToken::new()).await.unwrap();
            dbbench::results::RunResults::read(&summary.results_path).unwrap()
        }
    };
    let r = run("100000", "roomy").await;
    let e = &r.engines[0];
    let res = e.resources.as_ref().expect("resources recorded");
    assert!(res.watched.as_deref().unwrap().contains("dbbench's own process"), "{res:?}");
    let phase = e.phases[0].resources.as_ref().expect("the phase has a usage");
    assert!(phase.memory_peak_bytes > 1 << 20 && phase.samples >= 2, "{phase:?}");
    assert!(res.load.is_some() && res.index.is_some(), "{res:?}");
    // dbbench's own process holds the dataset before the engine loads it.
    let before = res.memory_before_bytes.expect("memory before the load recorded");
    assert!(before > 1 << 20 && before <= res.load.as_ref().unwrap().memory_peak_bytes * 2, "{res:?}");
    let peak = Metric::MemoryPeakMib.read_engine(e).unwrap();
    assert!(peak >= phase.memory_peak_bytes as f64 / (1u64 << 20) as f64);
    assert!(Metric::CpuSeconds.read_engine(e).unwrap() >= phase.cpu_s);
    let size = e.index.as_ref().unwrap().stats["size_bytes"].as_u64().expect("sqlite reports its file size");
    assert_eq!(Metric::DiskMib.read_engine(e).unwrap(), size as f64 / (1u64 << 20) as f64);
    assert_eq!(Metric::BytesPerRecord.read_engine(e).unwrap(), size as f64 / 2000.0);
    assert_eq!(recommend::evaluate(&r).fit, ["sqlite"]);
    // The reports are written from results alone, as `dbbench run` and `dbbench report` do.
    dbbench::report::write_reports(&r, &dir.path().join("roomy")).unwrap();
    assert!(std::fs::read_to_string(dir.path().join("roomy/report.md")).unwrap().contains("## Engine resources"));
    // Memory and CPU over time: a point per second sampled, in order, covering the stages.
    let t = &res.timeline;
    assert!(!t.is_empty(), "{res:?}");
    assert!(t.windows(2).all(|w| w[0].t_s < w[1].t_s), "{t:?}");
    assert!(t.iter().all(|p| p.memory_bytes > 1 << 20 && p.cpu_cores >= 0.0), "{t:?}");
    let load = res.load.as_ref().unwrap();
    assert!(
        load.start_s <= res.index.as_ref().unwrap().start_s && res.index.as_ref().unwrap().start_s <= phase.start_s
    );
    assert!(t.last().unwrap().t_s + 1.0 >= phase.start_s, "the timeline reaches the phase: {t:?} {phase:?}");
    let html = std::fs::read_to_string(dir.path().join("roomy/report.html")).unwrap();
    assert!(html.contains("Engine memory and CPU per second"), "the chart is drawn");

    let tight = run("1", "tight").await;
    let v = recommend::evaluate(&tight);
    assert!(v.fit.is_empty(), "1 MiB is below any process's memory: {v:?}");
    assert!(v.reasons.iter().any(|l| l.contains("peak memory")), "{:?}", v.reasons);
}
