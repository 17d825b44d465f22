//! A recovery phase: what an engine does when things go wrong.
//!
//! 1. **Crash.** A child dbbench process inserts new records at a fixed rate and prints
//!    each id as it sends it and as the engine acknowledges it. After `kill_after` the
//!    engine is killed with SIGKILL: a server's whole process tree (through the pid file
//!    `services/up.sh` wrote), or, for an engine embedded in dbbench, the child process
//!    itself, engine and all. The engine is started again (the launcher, or a new driver
//!    over the same files) and every insert is read back: an acknowledged insert that is
//!    not there was lost.
//! 2. **Restart.** The engine is stopped cleanly and started over its data; the time is
//!    from the start until the first verification query returns the ids it returned
//!    before the stop.
//! 3. **Backup and restore** with the engine's own tool (`Driver::backup`, `restore`),
//!    optionally with the backup damaged in between; the restored collection must hold
//!    as many records and answer the verification queries with the same ids.
//!
//! Every engine handle after a kill, stop or restore is a new driver `attach`ed to
//! dbbench's collection, never the old one with its dead connections.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

use crate::data::Dataset;
use crate::driver::{self, BackupTarget, Driver, EngineConfig, ErrorKind, Op, OpKind, Outcome, Record, Schema};
use crate::results::{BackupResult, CrashResult, RecoveryResult, RestartResult};
use crate::service::Service;
use crate::spec::{Damage, EnginePlan, RecoveryPlan};

use super::console;
use super::ops::Keyspace;

/// Results per search of the verification queries.
const VERIFY_K: usize = 10;
/// Lost ids kept in results.
const LOST_IDS_KEPT: usize = 20;
/// Between two attempts to reach a restarting engine.
const POLL: Duration = Duration::from_millis(50);

/// What the child writer is asked to do (JSON on its stdin).
#[derive(Serialize, Deserialize)]
pub struct WriterJob {
    pub driver: String,
    pub name: String,
    pub url: Option<String>,
    pub settings: toml::Table,
    pub base_dir: PathBuf,
    pub schema: Schema,
    pub records: Vec<WireRecord>,
    pub rate: f64,
    pub concurrency: usize,
}

/// A record on the writer's stdin.
#[derive(Serialize, Deserialize)]
pub struct WireRecord {
    pub id: u64,
    pub vector: Vec<f32>,
    pub text: String,
    pub attributes: Vec<driver::AttrValue>,
}

impl WireRecord {
    fn record(self) -> Record {
        Record { id: self.id, vector: self.vector.into(), text: self.text.into(), attributes: self.attributes }
    }
}

/// The child writer (`dbbench __recovery-writer`): attach to the collection, print
/// `ready`, then insert the records open loop at the rate, printing `send ID` before each
/// request and `ack ID` (or `err ID message`) after it, each line flushed at once, so
/// that what the parent reads survives the child's SIGKILL.
pub async fn writer(job: WriterJob) -> Result<(), String> {
    let kind = driver::find_kind(&job.driver).ok_or_else(|| format!("unknown driver {}", job.driver))?;
    let cfg = EngineConfig { name: job.name, url: job.url, settings: job.settings, base_dir: job.base_dir };
    let d: Arc<dyn Driver> = Arc::from((kind.open)(&cfg)?);
    d.ping().await.map_err(|e| e.message)?;
    d.attach(&job.schema).await.map_err(|e| e.message)?;
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let say = {
        let out = out.clone();
        move |line: String| {
            let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
            // The parent reading is the point; if it went away there is no one to tell.
            let _ = writeln!(o, "{line}").and_then(|_| o.flush());
        }
    };
    say("ready".into());
    let records: Arc<Vec<Record>> = Arc::new(job.records.into_iter().map(WireRecord::record).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let start = tokio::time::Instant::now();
    let period = Duration::from_secs_f64(1.0 / job.rate);
    let mut tasks = Vec::new();
    for _ in 0..job.concurrency.max(1) {
        let (d, records, next, say) = (d.clone(), records.clone(), next.clone(), say.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(r) = records.get(i) else { break };
                tokio::time::sleep_until(start + period * i as u32).await;
                say(format!("send {}", r.id));
                match d.execute(&Op::Insert { record: r }).await {
                    Ok(_) => say(format!("ack {}", r.id)),
                    Err(e) => say(format!("err {} {}", r.id, e.message.replace('\n', " "))),
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    say("done".into());
    Ok(())
}

/// What the parent read from the writer.
#[derive(Default)]
struct Ledger {
    ready: bool,
    sent: Vec<u64>,
    acked: HashSet<u64>,
    first_error: Option<String>,
    errors: u64,
}

impl Ledger {
    fn read(&mut self, line: &str) {
        let mut parts = line.splitn(3, ' ');
        let (word, id) = (parts.next(), parts.next().and_then(|i| i.parse::<u64>().ok()));
        match (word, id) {
            (Some("ready"), _) => self.ready = true,
            (Some("send"), Some(id)) => self.sent.push(id),
            (Some("ack"), Some(id)) => {
                self.acked.insert(id);
            }
            (Some("err"), Some(_)) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = parts.next().map(str::to_string);
                }
            }
            _ => {}
        }
    }
}

/// How the engine of a recovery phase is stopped and started.
enum Control {
    /// A server `services/up.sh` started.
    Server(Service),
    /// Embedded in dbbench: stopped by closing the driver (or killing the writer).
    Embedded,
}

/// Everything a recovery phase needs from the run.
pub struct RecoveryCtx<'a> {
    pub ep: &'a EnginePlan,
    pub schema: &'a Schema,
    pub ds: &'a Dataset,
    pub keys: &'a Keyspace,
    pub plan: &'a RecoveryPlan,
    /// The run folder: the launcher's log and the backups go under it.
    pub out_dir: &'a Path,
    pub cancel: &'a CancellationToken,
    /// Bytes the engine reported after the load, for the restart's data size.
    pub data_bytes: Option<u64>,
}

/// The outcome: the result, the driver to go on with (a new one when the engine was
/// restarted), and an error when a step failed so that the engine cannot go on.
pub struct Outcomes {
    pub result: RecoveryResult,
    pub driver: Arc<dyn Driver>,
    pub failed: Option<String>,
}

pub async fn run(ctx: &RecoveryCtx<'_>, driver: Arc<dyn Driver>) -> Outcomes {
    let mut result = RecoveryResult { durability: driver.durability().await, ..Default::default() };
    console::note(&format!("  durability: {}", result.durability));
    let control = if ctx.ep.kind.default_url.is_none() {
        Ok(Control::Embedded)
    } else {
        let svc = Service {
            name: ctx.ep.service.clone(),
            services_dir: crate::resources::services_dir(),
            up: ctx.plan.up.clone(),
            down: ctx.plan.down.clone(),
        };
        match super::watch_for(ctx.ep) {
            Ok(_) => Ok(Control::Server(svc)),
            Err(why) => Err(format!("the engine's processes cannot be stopped and started here: {why}")),
        }
    };
    // The steps that stop the engine need a new driver to take up the collection after;
    // find out before stopping anything whether this one can.
    // (An embedded engine's files are opened by one driver at a time: its writer, a
    // child process, is what finds that out.)
    let control = match control {
        Ok(Control::Embedded) => Ok(Control::Embedded),
        Ok(c) => match open_attached(ctx).await {
            Ok(probe) => {
                let _ = probe.close().await;
                Ok(c)
            }
            Err(e) if e.starts_with(UNSUPPORTED) => Err(format!(
                "{UNSUPPORTED}{} (a restarted engine could not be taken up again)",
                e.trim_start_matches(UNSUPPORTED)
            )),
            Err(e) => Err(format!("the engine cannot be taken up by a second driver: {e}")),
        },
        Err(e) => Err(e),
    };
    let params = verify_params(driver.as_ref());
    let ops = verify_ops(ctx, &params);
    let mut driver = driver;
    let mut failed = None;
    let p = ctx.plan;
    for step in [Step::Crash, Step::Restart, Step::Backup] {
        let asked = match step {
            Step::Crash => p.crash,
            Step::Restart => p.restart,
            Step::Backup => p.backup,
        };
        if !asked || ctx.cancel.is_cancelled() || failed.is_some() {
            continue;
        }
        let control = match (&control, step) {
            (Ok(c), _) => Some(c),
            (Err(_), Step::Backup) => None,
            (Err(why), _) if why.starts_with(UNSUPPORTED) => {
                let why = why.trim_start_matches(UNSUPPORTED);
                console::note(&format!("  {}: not supported: {why}", step.name()));
                result.notes.push(format!("{}: not supported: {why}", step.name()));
                continue;
            }
            (Err(why), _) => {
                console::note(&format!("  {}: not measured: {why}", step.name()));
                result.notes.push(format!("{}: not measured: {why}", step.name()));
                continue;
            }
        };
        let done = match step {
            Step::Crash => crash(ctx, control.expect("checked"), driver.clone()).await.map(|(c, d)| {
                console::note(&format!(
                    "  crash: {} acknowledged, {} lost; {} unacknowledged, {} of them found; back in {:.2}s",
                    c.acknowledged, c.lost, c.unacknowledged, c.unacknowledged_found, c.recovery_s
                ));
                result.crash = Some(c);
                d
            }),
            Step::Restart => restart(ctx, &ops, control.expect("checked"), driver.clone()).await.map(|(r, d)| {
                console::note(&format!(
                    "  restart: first correct answer after {:.2}s ({} of {} queries the same)",
                    r.seconds, r.queries_matched, r.queries
                ));
                result.restart = Some(r);
                d
            }),
            Step::Backup => match backup(ctx, &ops, control, driver.clone()).await {
                Ok((Some(b), d)) => {
                    console::note(&format!(
                        "  backup: {:.2}s, {}; restore: {}; verified: {} ({})",
                        b.backup_s,
                        b.size_bytes.map(crate::format::mib).unwrap_or_else(|| "size unknown".into()),
                        b.restore_s.map(|s| format!("{s:.2}s")).unwrap_or_else(|| "failed".into()),
                        if b.verified { "yes" } else { "NO" },
                        b.verification
                    ));
                    result.backup = Some(b);
                    Ok(d)
                }
                Ok((None, d)) => Ok(d),
                Err(e) => Err(e),
            },
        };
        match done {
            Ok(d) => driver = d,
            Err(e) if e.starts_with(UNSUPPORTED) => {
                let why = e.trim_start_matches(UNSUPPORTED).to_string();
                console::note(&format!("  {}: not supported: {why}", step.name()));
                result.notes.push(format!("{}: not supported: {why}", step.name()));
            }
            Err(e) => {
                console::warn(&format!("engine {}: recovery {}: {e}", ctx.ep.config.name, step.name()));
                result.notes.push(format!("{}: {e}", step.name()));
                failed = Some(format!("recovery {}: {e}", step.name()));
            }
        }
    }
    Outcomes { result, driver, failed }
}

/// Prefix of a step's error when the engine cannot do it at all (reported, not a failure).
const UNSUPPORTED: &str = "unsupported: ";

#[derive(Clone, Copy)]
enum Step {
    Crash,
    Restart,
    Backup,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Crash => "crash",
            Step::Restart => "restart",
            Step::Backup => "backup",
        }
    }
}

fn unsupported_or(e: driver::DriverError, what: &str) -> String {
    if e.kind == ErrorKind::Unsupported {
        format!("{UNSUPPORTED}{}", e.message)
    } else {
        format!("{what}: {}", e.message)
    }
}

/// A new driver for the engine, attached to dbbench's collection.
async fn open_attached(ctx: &RecoveryCtx<'_>) -> Result<Arc<dyn Driver>, String> {
    let d: Arc<dyn Driver> = Arc::from((ctx.ep.kind.open)(&ctx.ep.config)?);
    match tokio::time::timeout(Duration::from_secs(10), d.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.message),
        Err(_) => return Err("no answer within 10s".into()),
    }
    d.attach(ctx.schema).await.map_err(|e| unsupported_or(e, "attach"))?;
    Ok(d)
}

/// Open and attach until `ready` says the engine is back, within the restart timeout.
async fn until_back<F, Fut>(ctx: &RecoveryCtx<'_>, started: Instant, ready: F) -> Result<Arc<dyn Driver>, String>
where
    F: Fn(Arc<dyn Driver>) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut last = String::from("not tried");
    loop {
        if ctx.cancel.is_cancelled() {
            return Err("interrupted (Ctrl-C)".into());
        }
        if started.elapsed() > ctx.plan.restart_timeout {
            return Err(format!(
                "the engine did not answer correctly within {}s (last: {last})",
                ctx.plan.restart_timeout.as_secs()
            ));
        }
        match open_attached(ctx).await {
            Ok(d) => match ready(d.clone()).await {
                Ok(()) => return Ok(d),
                Err(e) => last = e,
            },
            Err(e) if e.starts_with(UNSUPPORTED) => return Err(e),
            Err(e) => last = e,
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The ids each verification query returns: kNN for each, and text too when the
/// engine ranks text itself.
///
/// Each answer is sorted: the order among equal scores is the engine's to choose, and
/// may differ after a restart without anything being lost.
async fn answers(ops: &[Op<'_>], d: &dyn Driver) -> Result<Vec<Vec<u64>>, String> {
    let mut out = Vec::new();
    for op in ops {
        match d.execute(op).await {
            Ok(Outcome::Hits(mut h)) => {
                h.sort_unstable();
                out.push(h)
            }
            Ok(other) => return Err(format!("a search returned {other:?}")),
            Err(e) => return Err(e.message),
        }
    }
    Ok(out)
}

/// The search params of the verification queries: the engine's effort knob at its
/// highest value (when it is a per-request param), so that an approximate index answers
/// as near exactly as it can and a rebuilt index (a restore that builds it anew) is
/// compared on its data, not on the luck of its graph.
fn verify_params(d: &dyn Driver) -> driver::SearchParams {
    let mut p = driver::SearchParams::new();
    if let Some(knob) = d.effort_knob(OpKind::Knn).filter(|k| k.scope == driver::KnobScope::Request) {
        p.insert(knob.param.to_string(), serde_json::json!(knob.value(knob.max, VERIFY_K)));
    }
    p
}

fn verify_ops<'a>(ctx: &'a RecoveryCtx<'a>, params: &'a driver::SearchParams) -> Vec<Op<'a>> {
    let ds = ctx.ds;
    let n = ds.queries.ids.len().min(ctx.plan.verify_queries);
    let text = matches!((ctx.ep.kind.capabilities)().support(OpKind::Text), driver::Support::Native)
        && !ds.queries.texts.is_empty();
    let mut ops = Vec::new();
    for q in 0..n {
        if ds.has_query_vectors() {
            ops.push(Op::Knn { vector: ds.query_vector(q), k: VERIFY_K, filter: None, params });
        }
        if text {
            ops.push(Op::Text { query: &ds.queries.texts[q], k: VERIFY_K, filter: None, params });
        }
    }
    ops
}

/// How many of `now` equal `before`, position by position.
fn matched(before: &[Vec<u64>], now: &[Vec<u64>]) -> usize {
    before.iter().zip(now).filter(|(a, b)| a == b).count()
}

async fn count(d: &dyn Driver) -> Option<u64> {
    d.count().await.ok()
}

fn launcher_log(ctx: &RecoveryCtx<'_>) -> PathBuf {
    ctx.out_dir.join(format!("recovery-{}.log", ctx.ep.config.name))
}

/// Start the engine again after a kill or a stop: the launcher for a server (its exit
/// awaited in the background), nothing for an embedded engine.
fn start(ctx: &RecoveryCtx<'_>, control: &Control) -> Result<Option<tokio::process::Child>, String> {
    match control {
        Control::Server(s) => s.launch(&launcher_log(ctx)).map(Some),
        Control::Embedded => Ok(None),
    }
}

async fn launcher_done(ctx: &RecoveryCtx<'_>, child: Option<tokio::process::Child>) -> Result<(), String> {
    let Some(mut child) = child else { return Ok(()) };
    match tokio::time::timeout(ctx.plan.restart_timeout, child.wait()).await {
        Ok(Ok(st)) if st.success() => Ok(()),
        Ok(Ok(st)) => Err(format!("the launcher failed ({st}); see {}", launcher_log(ctx).display())),
        Ok(Err(e)) => Err(format!("the launcher: {e}")),
        Err(_) => Err(format!("the launcher did not finish; see {}", launcher_log(ctx).display())),
    }
}

async fn crash(
    ctx: &RecoveryCtx<'_>,
    control: &Control,
    driver: Arc<dyn Driver>,
) -> Result<(CrashResult, Arc<dyn Driver>), String> {
    let p = ctx.plan;
    let records_before = count(driver.as_ref()).await;
    // Enough inserts that the writer is still busy when the kill comes.
    let n = (p.write_rate * (p.kill_after.as_secs_f64() + 30.0)).ceil() as usize;
    let records: Vec<WireRecord> = (0..n).map(|i| crash_record(ctx.ds, i, ctx.keys.next_id())).collect();
    // The writer opens the engine's files itself: the parent lets go of them first.
    if matches!(control, Control::Embedded) {
        driver.close().await.map_err(|e| format!("close: {}", e.message))?;
    }
    drop(driver);
    let job = WriterJob {
        driver: ctx.ep.kind.kind.to_string(),
        name: ctx.ep.config.name.clone(),
        url: ctx.ep.config.url.clone(),
        settings: ctx.ep.config.settings.clone(),
        base_dir: ctx.ep.config.base_dir.clone(),
        schema: ctx.schema.clone(),
        records,
        rate: p.write_rate,
        concurrency: p.write_concurrency,
    };
    let exe = std::env::current_exe().map_err(|e| format!("cannot find dbbench's own executable: {e}"))?;
    let mut child = tokio::process::Command::new(exe)
        .arg("__recovery-writer")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the writer process: {e}"))?;
    let json = serde_json::to_vec(&job).map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(&json).await.map_err(|e| format!("writer stdin: {e}"))?;
    drop(stdin);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let reader = {
        let ledger = ledger.clone();
        let stdout = child.stdout.take().expect("piped");
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let mut ready_tx = Some(ready_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                let mut l = ledger.lock().unwrap_or_else(|p| p.into_inner());
                l.read(&line);
                if l.ready {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(Instant::now());
                    }
                }
            }
        })
    };
    let mut stderr = child.stderr.take().expect("piped");
    let started = match tokio::time::timeout(Duration::from_secs(120), ready_rx).await {
        Ok(Ok(at)) => at,
        _ => {
            let _ = child.start_kill();
            let mut msg = String::new();
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut msg).await;
            return Err(format!("the writer process did not start: {}", msg.trim()));
        }
    };
    tokio::select! {
        _ = tokio::time::sleep_until((started + p.kill_after).into()) => {}
        _ = ctx.cancel.cancelled() => {
            let _ = child.start_kill();
            return Err("interrupted (Ctrl-C)".into());
        }
    }
    // The moment the kill is sent: the writer is frozen (server) or killed (embedded).
    let kill_after_s = started.elapsed().as_secs_f64();
    let killed = match control {
        Control::Server(s) => {
            // Freeze the writer first: whatever it has printed was acknowledged (or sent)
            // before the kill, and it sends nothing after; then kill the server, then it.
            if let Some(pid) = child.id() {
                crate::service::signal(&[pid], "STOP")?;
            }
            let what = s.kill()?;
            let _ = child.start_kill();
            what
        }
        Control::Embedded => {
            child.start_kill().map_err(|e| format!("cannot kill the writer: {e}"))?;
            format!("SIGKILL to the dbbench process writing to {} (the engine runs embedded in it)", ctx.ep.kind.kind)
        }
    };
    let _ = child.wait().await;
    let _ = reader.await;
    let ledger = std::mem::take(&mut *ledger.lock().unwrap_or_else(|p| p.into_inner()));
    if ledger.sent.is_empty() {
        return Err(format!(
            "the writer sent nothing before the kill{}",
            ledger.first_error.map(|e| format!(" ({e})")).unwrap_or_default()
        ));
    }
    if ledger.acked.is_empty() {
        return Err(format!(
            "the engine acknowledged none of {} inserts before the kill{}",
            ledger.sent.len(),
            ledger.first_error.map(|e| format!(": {e}")).unwrap_or_default()
        ));
    }
    // Start it again and wait for it to hold the collection.
    let t0 = Instant::now();
    let launcher = start(ctx, control)?;
    let d = until_back(ctx, t0, |d| async move { d.count().await.map(|_| ()).map_err(|e| e.message) }).await?;
    let recovery_s = t0.elapsed().as_secs_f64();
    launcher_done(ctx, launcher).await?;
    // Read every insert back.
    let mut lost_ids = Vec::new();
    let (mut unacked, mut unacked_found) = (0u64, 0u64);
    for id in &ledger.sent {
        let found = match d.execute(&Op::Get { id: *id }).await {
            Ok(Outcome::Found(r)) => r.is_some_and(|r| r.id == *id),
            Ok(other) => return Err(format!("get {id} returned {other:?}")),
            Err(e) => return Err(format!("reading insert {id} back: {}", e.message)),
        };
        if ledger.acked.contains(id) {
            if !found {
                lost_ids.push(*id);
            }
        } else {
            unacked += 1;
            unacked_found += found as u64;
        }
    }
    let lost = lost_ids.len() as u64;
    lost_ids.truncate(LOST_IDS_KEPT);
    let result = CrashResult {
        killed,
        write_rate: p.write_rate,
        write_concurrency: p.write_concurrency,
        kill_after_s,
        sent: ledger.sent.len() as u64,
        acknowledged: ledger.acked.len() as u64,
        lost,
        lost_ids,
        unacknowledged: unacked,
        unacknowledged_found: unacked_found,
        records_before,
        records_after: count(d.as_ref()).await,
        recovery_s,
    };
    Ok((result, d))
}

async fn restart(
    ctx: &RecoveryCtx<'_>,
    ops: &[Op<'_>],
    control: &Control,
    driver: Arc<dyn Driver>,
) -> Result<(RestartResult, Arc<dyn Driver>), String> {
    let before = answers(ops, driver.as_ref()).await.map_err(|e| format!("verification queries: {e}"))?;
    if before.is_empty() {
        return Err(format!("{UNSUPPORTED}the dataset has no queries to check the restarted engine with"));
    }
    let records = count(driver.as_ref()).await;
    let how = match control {
        Control::Server(s) => {
            s.stop(&launcher_log(ctx)).await?;
            format!("stopped with {} {n}, started with {} {n}", s.down.display(), s.up.display(), n = s.name)
        }
        Control::Embedded => {
            driver.close().await.map_err(|e| format!("close: {}", e.message))?;
            "closed, then opened again by a new driver in the same process".to_string()
        }
    };
    drop(driver);
    let t0 = Instant::now();
    let launcher = start(ctx, control)?;
    let first = &before[0];
    let d = until_back(ctx, t0, |d| async move {
        match answers(&ops[..1], d.as_ref()).await?.pop() {
            Some(h) if h == *first => Ok(()),
            Some(h) => Err(format!("the first query returned {} of its {} ids", overlap(first, &h), first.len())),
            None => Err("no answer".into()),
        }
    })
    .await?;
    let seconds = t0.elapsed().as_secs_f64();
    launcher_done(ctx, launcher).await?;
    let now = answers(ops, d.as_ref()).await.map_err(|e| format!("verification queries after the restart: {e}"))?;
    let result = RestartResult {
        how,
        seconds,
        records,
        data_bytes: ctx.data_bytes,
        queries: before.len(),
        queries_matched: matched(&before, &now),
    };
    Ok((result, d))
}

/// The `i`-th insert of a crash: record `i` of the dataset (cycling) under a fresh id,
/// its vector nudged and a word of its own added to its text, so that it ties with no
/// other record in a search (the verification compares answers across a restart, and
/// the order among ties is the engine's to choose).
fn crash_record(ds: &Dataset, i: usize, id: u64) -> WireRecord {
    let r = ds.record(i % ds.len());
    let mut vector = r.vector.to_vec();
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    let j = (id as usize) % vector.len().max(1);
    if let Some(x) = vector.get_mut(j) {
        *x += 1e-3 * norm;
    }
    WireRecord { id, vector, text: format!("{} dbbenchcrash{id}", r.text), attributes: r.attributes }
}

fn overlap(a: &[u64], b: &[u64]) -> usize {
    b.iter().filter(|x| a.contains(x)).count()
}

async fn backup(
    ctx: &RecoveryCtx<'_>,
    ops: &[Op<'_>],
    control: Option<&Control>,
    driver: Arc<dyn Driver>,
) -> Result<(Option<BackupResult>, Arc<dyn Driver>), String> {
    let before = answers(ops, driver.as_ref()).await.map_err(|e| format!("verification queries: {e}"))?;
    let records_before = count(driver.as_ref()).await;
    let dir = ctx.out_dir.join(format!("backup-{}", ctx.ep.config.name));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let service = match control {
        Some(Control::Server(s)) => Some(s),
        _ => None,
    };
    let target = BackupTarget { dir: &dir, service };
    let t0 = Instant::now();
    let made = driver.backup(&target).await;
    let backup_s = t0.elapsed().as_secs_f64();
    let made = match made {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(unsupported_or(e, "backup"));
        }
    };
    let damaged = match ctx.plan.damage {
        Damage::None => None,
        Damage::Truncate => Some(truncate_largest(&made.files)?),
    };
    let t0 = Instant::now();
    let restored = driver.restore(&made, &target).await;
    let restore_s = t0.elapsed().as_secs_f64();
    let mut result = BackupResult {
        tool: made.tool.clone(),
        backup_s,
        size_bytes: made.size_bytes,
        damaged,
        restore_s: None,
        verified: false,
        verification: String::new(),
        records_before,
        records_after: None,
        queries: before.len(),
        queries_matched: 0,
    };
    let attached = match restored {
        Err(e) => {
            result.verification = format!("the restore failed: {}", e.message);
            None
        }
        Ok(()) => {
            result.restore_s = Some(restore_s);
            // The check goes through a new driver, as after a restart; an embedded
            // engine's files are opened by one at a time.
            driver.close().await.map_err(|e| format!("close: {}", e.message))?;
            match open_attached(ctx).await {
                Ok(d) => Some(d),
                Err(e) => {
                    result.verification = format!("the restored collection cannot be opened: {e}");
                    None
                }
            }
        }
    };
    if let Some(d) = &attached {
        result.records_after = count(d.as_ref()).await;
        match answers(ops, d.as_ref()).await {
            Ok(now) => {
                result.queries_matched = matched(&before, &now);
                let same_count = result.records_after.is_some() && result.records_after == records_before;
                result.verified = same_count && result.queries_matched == before.len();
                result.verification = format!(
                    "{} records before, {} after; {} of {} queries returned the same ids",
                    opt(records_before),
                    opt(result.records_after),
                    result.queries_matched,
                    before.len()
                );
            }
            Err(e) => result.verification = format!("the restored collection does not answer: {e}"),
        }
    }
    if !result.verified {
        // A failed restore is reported as such, never as a restore time.
        result.restore_s = None;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok((Some(result), attached.unwrap_or(driver)))
}

fn opt(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_else(|| "?".into())
}

/// Cut the largest of `files` to half its length; says what was done.
fn truncate_largest(files: &[PathBuf]) -> Result<String, String> {
    let f = files.first().ok_or("the backup has no file on this machine to damage")?;
    let len = std::fs::metadata(f).map_err(|e| format!("{}: {e}", f.display()))?.len();
    let file = std::fs::OpenOptions::new().write(true).open(f).map_err(|e| format!("{}: {e}", f.display()))?;
    file.set_len(len / 2).map_err(|e| format!("{}: {e}", f.display()))?;
    Ok(format!(
        "{} cut from {len} to {} bytes",
        f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        len / 2
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_counts_sends_acks_and_errors() {
        let mut l = Ledger::default();
        for line in ["ready", "send 7", "send 8", "ack 7", "err 8 connection reset", "send 9", "garbage"] {
            l.read(line);
        }
        assert!(l.ready);
        assert_eq!(l.sent, [7, 8, 9]);
        assert_eq!(l.acked, HashSet::from([7]));
        assert_eq!(l.errors, 1);
        assert_eq!(l.first_error.as_deref(), Some("connection reset"));
    }

    #[test]
    fn matched_compares_position_by_position() {
        let a = vec![vec![1, 2], vec![3, 4], vec![5]];
        assert_eq!(matched(&a, &a), 3);
        assert_eq!(matched(&a, &[vec![1, 2], vec![4, 3], vec![5]]), 2);
        assert_eq!(matched(&a, &[vec![1, 2]]), 1);
    }

    #[test]
    fn truncating_halves_the_largest_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.db");
        std::fs::write(&f, vec![7u8; 1000]).unwrap();
        let what = truncate_largest(std::slice::from_ref(&f)).unwrap();
        assert_eq!(what, "a.db cut from 1000 to 500 bytes");
        assert_eq!(std::fs::metadata(&f).unwrap().len(), 500);
        assert!(truncate_largest(&[]).is_err());
    }
}
