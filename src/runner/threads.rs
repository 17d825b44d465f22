//! The threads a phase's workers (the simulated clients) run on: a fixed set of OS
//! threads, each driving its own single-threaded tokio runtime, with worker `w` always on
//! thread `w % n`. This is how pgbench runs its clients (`-j` threads, each owning its
//! connections and polling them itself), and what a fair side-by-side with it needs.
//!
//! Why not tokio's shared multi-thread runtime: there, one thread at a time owns the I/O
//! driver, so the readiness of every client's socket is seen, and its task mostly run, by
//! whichever thread holds it; the other thread sleeps until work is stolen. With four
//! clients against PostgreSQL on two cores that made the same sqlx point reads about 15%
//! slower than on two threads with a runtime each (medians of alternating 3 s runs; see
//! the README's side-by-side section). Here each thread polls the sockets its own clients
//! opened, and a worker never moves between threads.
//!
//! Workers may still use anything made on the main runtime (a driver's connections from
//! the load, an HTTP client's pooled connections): tokio resources work across runtimes
//! as long as the runtime they were made on runs, and both live for the whole run.
//! What workers open on these threads (connections, spawned tasks) lives until the set
//! is dropped at the end of the run.
//!
//! Must never: run anything but phase workers, or be dropped while a phase is running.

use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// How long a client thread waits, at the end of the run, for blocking work its runtime
/// still owns (an embedded engine's call on the blocking pool) before leaving it behind.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A set of client threads; see the module docs.
pub struct ClientThreads {
    handles: Vec<Handle>,
    stops: Vec<oneshot::Sender<()>>,
    joins: Vec<JoinHandle<()>>,
}

impl ClientThreads {
    /// Start `n` threads (at least one), each with its own current-thread runtime.
    pub fn start(n: usize) -> std::io::Result<Self> {
        let mut set = ClientThreads { handles: Vec::new(), stops: Vec::new(), joins: Vec::new() };
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (stop, stopped) = oneshot::channel::<()>();
            set.handles.push(rt.handle().clone());
            set.stops.push(stop);
            // If spawning fails, `set` is dropped here and stops the threads already started.
            set.joins.push(std::thread::Builder::new().name(format!("dbbench-client-{i}")).spawn(move || {
                // Tasks spawned through the handle run while this thread blocks here.
                rt.block_on(async {
                    let _ = stopped.await;
                });
                rt.shutdown_timeout(SHUTDOWN_GRACE);
            })?);
        }
        Ok(set)
    }

    /// One thread per core the process may use (what pgbench's `-j` is usually set to).
    pub fn per_core() -> std::io::Result<Self> {
        Self::start(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
    }

    /// How many threads a phase of `workers` workers uses.
    pub fn used_by(&self, workers: usize) -> usize {
        workers.min(self.handles.len())
    }

    /// Run worker `worker`'s future on its thread (`worker % len`). The handle can be
    /// awaited from any runtime.
    pub fn spawn<F>(&self, worker: usize, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handles[worker % self.handles.len()].spawn(f)
    }
}

impl Drop for ClientThreads {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for join in self.joins.drain(..) {
            // A thread that panicked has nothing left to hand back; the phase that ran on
            // it already reported its worker as failed.
            let _ = join.join();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn thread_name() -> String {
        std::thread::current().name().unwrap_or_default().to_string()
    }

    #[test]
    fn worker_w_runs_on_thread_w_mod_n_every_time() {
        let threads = ClientThreads::start(2).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let names: Vec<String> = rt.block_on(async {
            let mut names = Vec::new();
            for w in 0..5 {
                names.push(threads.spawn(w, async { thread_name() }).await.unwrap());
            }
            names
        });
        assert_eq!(
            names,
            ["dbbench-client-0", "dbbench-client-1", "dbbench-client-0", "dbbench-client-1", "dbbench-client-0"]
        );
        assert_eq!(threads.used_by(1), 1);
        assert_eq!(threads.used_by(8), 2);
    }

    #[test]
    fn a_connection_made_on_one_runtime_serves_a_task_on_another() {
        // A TCP pair made on the caller's runtime, then used from a client thread: this is
        // a driver's load-time connection reused by a worker.
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let threads = ClientThreads::start(1).unwrap();
        let echoed = rt.block_on(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf).await.unwrap();
                s.write_all(&buf).await.unwrap();
            });
            let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let echoed = threads
                .spawn(0, async move {
                    client.write_all(b"ping").await.unwrap();
                    let mut buf = [0u8; 4];
                    client.read_exact(&mut buf).await.unwrap();
                    (buf, thread_name())
                })
                .await
                .unwrap();
            server.await.unwrap();
            echoed
        });
        assert_eq!(echoed, (*b"ping", "dbbench-client-0".to_string()));
    }

    #[test]
    fn dropping_the_set_stops_its_threads() {
        let threads = ClientThreads::start(2).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // A task still waiting when the set goes is dropped with its runtime, not leaked.
        let (tx, rx) = oneshot::channel::<()>();
        let pending = threads.spawn(1, async move {
            let _ = rx.await;
        });
        drop(threads);
        let r = rt.block_on(pending);
        assert!(r.unwrap_err().is_cancelled());
        drop(tx);
    }
}
