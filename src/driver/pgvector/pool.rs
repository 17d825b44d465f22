//! pgvector's connection pool, and how sqlx's errors map to dbbench's kinds.
//!
//! Connections are kept in a small pool of our own rather than `sqlx::Pool`, for two
//! reasons. sqlx's pool pings a connection before handing it out (a second round trip
//! per request unless disabled), and retries refused connections until its acquire
//! timeout, which would hide a dead server from the runner for seconds per request.
//! And each connection here remembers the search knobs (`hnsw.ef_search`,
//! `ivfflat.probes`) last set on it, so a request is one round trip: the knobs are set
//! with a session-level `SET` only when a connection is handed a request that wants
//! other values, and the pool prefers a connection that already has the wanted values.
//! `SET LOCAL` inside a transaction would cost three extra round trips per query through
//! sqlx (BEGIN, SET LOCAL, COMMIT), as sqlx has no pipelining; the connections are
//! dbbench's own, so a session setting cannot leak into anyone else's work.
//!
//! It must never hand a worker a connection opened on another runtime, nor keep a
//! connection whose request failed for a reason other than the server saying no.

use std::sync::Mutex;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::ConnectOptions;

use crate::driver::{DriverError, DriverResult, ErrorKind};

/// The per-session search knobs a query wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Knobs {
    pub(super) ef_search: u32,
    pub(super) probes: u32,
}

pub(super) struct Conn {
    pub(super) pg: PgConnection,
    knobs: Option<Knobs>,
    /// The worker that used it last (`driver::current_worker`).
    worker: Option<usize>,
    /// The async runtime it was opened on, whose I/O driver polls its socket.
    runtime: Option<tokio::runtime::Id>,
}

/// The runtime the caller runs on: the main one, or a run's client thread.
fn this_runtime() -> Option<tokio::runtime::Id> {
    tokio::runtime::Handle::try_current().ok().map(|h| h.id())
}

/// Which idle connection (given as (opened on this runtime, last worker, knobs)) goes to
/// worker `me` wanting `want`. Only one opened on the caller's runtime: a socket polled
/// by another runtime's I/O driver would cost a wake-up across threads on every request.
/// Among those, its own before one with the right knobs, both before any; among equals
/// the one released last.
fn pick(
    idle: impl Iterator<Item = (bool, Option<usize>, Option<Knobs>)>,
    me: Option<usize>,
    want: Option<Knobs>,
) -> Option<usize> {
    idle.enumerate()
        .filter(|(_, (here, _, _))| *here)
        .map(|(i, (_, worker, knobs))| {
            (2 * u8::from(me.is_some() && worker == me) + u8::from(want.is_some() && knobs == want), i)
        })
        .max()
        .map(|(_, i)| i)
}

/// Open connections not in use, and how to open more.
pub(super) struct Pool {
    pub(super) options: PgConnectOptions,
    /// Run once on every new connection (session settings that never change).
    pub(super) init_sql: String,
    pub(super) idle: Mutex<Vec<Conn>>,
    pub(super) max_idle: usize,
    pub(super) connect_timeout: Duration,
}

impl Pool {
    async fn connect(&self) -> DriverResult<Conn> {
        let pg = match tokio::time::timeout(self.connect_timeout, self.options.connect()).await {
            Ok(r) => r.map_err(pg_err)?,
            Err(_) => {
                return Err(DriverError::unreachable(format!(
                    "pgvector: no connection within {:.1}s",
                    self.connect_timeout.as_secs_f64()
                )))
            }
        };
        let mut c = Conn { pg, knobs: None, worker: None, runtime: this_runtime() };
        simple(&mut c.pg, &self.init_sql).await.map_err(pg_err)?;
        Ok(c)
    }

    /// A connection opened on the caller's runtime: preferably the one this worker used
    /// last, and one whose knobs are already `want` (a session SET saved). Keeping each
    /// worker on its own connection keeps each simulated client on one server backend, as
    /// real clients are, and a run's worker always runs on the same client thread.
    pub(super) async fn acquire(&self, want: Option<Knobs>) -> DriverResult<Conn> {
        let found = {
            let mut idle = self.idle.lock().expect("pool lock");
            let here = this_runtime();
            let at = pick(
                idle.iter().map(|c| (c.runtime == here, c.worker, c.knobs)),
                crate::driver::current_worker(),
                want,
            );
            at.map(|i| idle.swap_remove(i))
        };
        let mut c = match found {
            Some(c) => c,
            None => self.connect().await?,
        };
        if let Some(w) = want.filter(|w| c.knobs != Some(*w)) {
            // Integers formatted by us: nothing from outside reaches this SQL text.
            let sql = format!("SET hnsw.ef_search = {}; SET ivfflat.probes = {}", w.ef_search, w.probes);
            simple(&mut c.pg, &sql).await.map_err(pg_err)?;
            c.knobs = Some(w);
        }
        Ok(c)
    }

    pub(super) fn release(&self, mut c: Conn) {
        c.worker = crate::driver::current_worker();
        let mut idle = self.idle.lock().expect("pool lock");
        // A worker's connection is always kept: dropping it would make that worker
        // reconnect inside its next timed request. Others up to `max_idle`.
        if c.worker.is_some() || idle.iter().filter(|c| c.worker.is_none()).count() < self.max_idle {
            idle.push(c);
        }
    }

    pub(super) fn clear(&self) {
        self.idle.lock().expect("pool lock").clear();
    }
}

/// Map a sqlx error to dbbench's kinds: a server that cannot be talked to is
/// `Unreachable` (so the runner can declare it lost), a cancelled statement a `Timeout`,
/// any other server error `Rejected`.
pub(super) fn pg_err(e: sqlx::Error) -> DriverError {
    use sqlx::Error as E;
    match &e {
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => {
            DriverError::unreachable(format!("pgvector: {e}"))
        }
        E::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            let msg = format!("pgvector: {} (SQLSTATE {code})", db.message());
            // Class 08: connection exception (but 08P01 is a protocol violation, a bug
            // of ours, not a lost server); 57P01-57P03: admin/crash shutdown, cannot
            // connect now (the server is going away or not yet accepting).
            if code == "08P01" {
                DriverError::protocol(msg)
            } else if code.starts_with("28") {
                // Class 28: invalid authorization (wrong password, no such role, no
                // pg_hba.conf entry for this user): the server is there and said no.
                DriverError::new(ErrorKind::Auth, msg)
            } else if code.starts_with("08") || ["57P01", "57P02", "57P03"].contains(&code.as_str()) {
                DriverError::unreachable(msg)
            } else if code == "57014" {
                DriverError::new(ErrorKind::Timeout, msg)
            } else {
                DriverError::rejected(msg)
            }
        }
        E::Protocol(_) | E::Decode(_) | E::ColumnDecode { .. } | E::TypeNotFound { .. } => {
            DriverError::protocol(format!("pgvector: {e}"))
        }
        _ => DriverError::other(format!("pgvector: {e}")),
    }
}

/// Run SQL text without parameters (simple query protocol; may hold several statements).
pub(super) async fn simple(pg: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::Executor::execute(pg, sql).await.map(|_| ())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn a_worker_gets_its_own_connection_back() {
        let a = Some(Knobs { ef_search: 40, probes: 1 });
        let b = Some(Knobs { ef_search: 200, probes: 1 });
        assert_eq!(pick(std::iter::empty(), Some(0), a), None);
        let idle = [(true, Some(0), a), (true, Some(1), b), (true, Some(2), a)];
        // Its own, even when another's has the knobs already.
        assert_eq!(pick(idle.into_iter(), Some(1), a), Some(1));
        // Its own with the right knobs first.
        assert_eq!(pick([(true, Some(1), a), (true, Some(1), b), (true, Some(0), b)].into_iter(), Some(1), b), Some(1));
        // None of its own: the right knobs, then the one released last.
        assert_eq!(pick(idle.into_iter(), Some(7), b), Some(1));
        assert_eq!(pick(idle.into_iter(), Some(7), None), Some(2));
        // Outside a phase (load, describe): the one released last.
        assert_eq!(pick(idle.into_iter(), None, None), Some(2));
        assert_eq!(pick(idle.into_iter(), None, a), Some(2));
        assert_eq!(pick([(true, None, a), (true, None, b)].into_iter(), None, a), Some(0));
    }

    #[test]
    fn only_a_connection_opened_on_the_callers_runtime_is_handed_out() {
        let a = Some(Knobs { ef_search: 40, probes: 1 });
        // Its own connection, opened on another runtime, is passed over for any of this one's.
        let idle = [(false, Some(1), a), (true, Some(0), None)];
        assert_eq!(pick(idle.into_iter(), Some(1), a), Some(1));
        // None opened here: a new connection.
        assert_eq!(pick([(false, Some(1), a), (false, None, a)].into_iter(), Some(1), a), None);
        assert_eq!(pick([(false, None, a)].into_iter(), None, a), None);
    }

    #[test]
    fn connection_failures_are_unreachable() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(pg_err(io).kind, ErrorKind::Unreachable);
        assert_eq!(pg_err(sqlx::Error::PoolTimedOut).kind, ErrorKind::Unreachable);
    }
}
