//! Backup and restore of dbbench's tables with PostgreSQL's own tools, `pg_dump` and
//! `pg_restore`, of the server's major version; and what a commit promises as configured.

use std::path::PathBuf;

use super::pool::pg_err;
use super::PgVector;
use crate::driver::{percent_decode, DriverError, DriverResult};

/// The client tools matching the server.
pub(super) struct Tools {
    /// Their folder (`/usr/lib/postgresql/<major>/bin`), or empty for the ones on PATH.
    dir: PathBuf,
    /// In words, for results.
    pub(super) version: String,
}

impl Tools {
    /// The tools of the server's major version when they are installed where Debian puts
    /// them, else the ones on PATH (pg_dump refuses a server newer than itself, and says so).
    pub(super) async fn find(d: &PgVector) -> DriverResult<Tools> {
        let mut c = d.pool.acquire(None).await?;
        let num: String = sqlx::query_scalar("SHOW server_version_num").fetch_one(&mut c.pg).await.map_err(pg_err)?;
        d.pool.release(c);
        let major = num.parse::<u32>().map(|n| n / 10000).unwrap_or(0);
        let dir = PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"));
        Ok(if dir.join("pg_dump").exists() {
            Tools { version: format!("PostgreSQL {major} client tools"), dir }
        } else {
            Tools { version: "the PostgreSQL client tools on PATH".into(), dir: PathBuf::new() }
        })
    }

    /// Run `tool` against the database at `url`. The password, if the URL has one, goes
    /// to the tool through `PGPASSWORD`, never on its command line.
    pub(super) async fn run(&self, tool: &str, args: &[String], url: &str) -> DriverResult<()> {
        let (url, password) = split_password(url);
        let exe = if self.dir.as_os_str().is_empty() { PathBuf::from(tool) } else { self.dir.join(tool) };
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.arg(format!("--dbname={url}")).args(args).stdin(std::process::Stdio::null());
        if let Some(p) = password {
            cmd.env("PGPASSWORD", p);
        }
        let out = cmd.output().await.map_err(|e| {
            DriverError::unsupported(format!(
                "pgvector: cannot run {} ({e}); install the PostgreSQL client tools (postgresql-client)",
                exe.display()
            ))
        })?;
        if out.status.success() {
            Ok(())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = err.lines().rev().take(3).collect();
            Err(DriverError::other(format!(
                "pgvector: {tool} failed ({}): {}",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            )))
        }
    }
}

/// The URL without its password, and the password (decoded).
fn split_password(url: &str) -> (String, Option<String>) {
    let Some(scheme_end) = url.find("://") else { return (url.to_string(), None) };
    let rest = scheme_end + 3;
    let authority_end = url[rest..].find(['/', '?', '#']).map_or(url.len(), |i| rest + i);
    let Some(at) = url[rest..authority_end].rfind('@') else { return (url.to_string(), None) };
    let userinfo = &url[rest..rest + at];
    match userinfo.split_once(':') {
        Some((user, password)) => {
            (format!("{}{user}{}", &url[..rest], &url[rest + at..]), Some(percent_decode(password)))
        }
        None => (url.to_string(), None),
    }
}

/// What an acknowledged commit survives with these settings.
pub(super) fn promise(fsync: &str, synchronous_commit: &str, wal_writer_delay: &str) -> String {
    if synchronous_commit == "off" {
        return format!(
            "a commit is acknowledged before its WAL is written out; the WAL writer writes it within about 3 x wal_writer_delay ({wal_writer_delay}), and commits not yet written are lost when the server's processes die"
        );
    }
    if fsync == "off" {
        return "a commit's WAL is written before it is acknowledged but never fsynced: it survives the server's processes dying, not a power loss".into();
    }
    "a commit's WAL is flushed to disk before it is acknowledged: it survives the server's processes dying and a power loss".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_for_the_environment() {
        assert_eq!(
            split_password("postgres://bench:p%40ss@db:5432/x?sslmode=require"),
            ("postgres://bench@db:5432/x?sslmode=require".to_string(), Some("p@ss".to_string()))
        );
        assert_eq!(split_password("postgres://bench@db/x"), ("postgres://bench@db/x".to_string(), None));
        assert_eq!(split_password("host=db user=x"), ("host=db user=x".to_string(), None));
    }

    #[test]
    fn the_promise_follows_the_settings() {
        assert!(promise("on", "off", "200ms").contains("lost"));
        assert!(promise("off", "on", "200ms").contains("not a power loss"));
        assert!(promise("on", "on", "200ms").contains("and a power loss"));
    }
}
