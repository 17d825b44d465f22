//! A private, throwaway PostgreSQL 15 + pgvector cluster for the tests that kill a
//! server: initdb in a temp dir, its own port, trust auth on loopback, `CREATE EXTENSION
//! vector`. A guard stops it even when an assertion fails. Needs PostgreSQL 15 with
//! pgvector installed (`services/up.sh pgvector` installs both).

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// A PostgreSQL tool, run as the `postgres` OS user when we are root (PostgreSQL refuses
/// to run as root).
fn pg_tool(tool: &str) -> Command {
    let bin = format!("{PG_BIN}/{tool}");
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &bin]);
        c
    } else {
        Command::new(bin)
    }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    for port in [5439u16, 5449, 5459, 5469] {
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port()
}

/// A private cluster; stopping and removing it is the guard's job.
pub struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
    /// The server's command-line options (`pg_ctl -o`).
    opts: String,
}

impl Cluster {
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A cluster with `fsync = off` (nothing here survives a power loss, and nothing
    /// needs to).
    pub fn start() -> Cluster {
        Cluster::start_with("-c fsync=off")
    }

    /// A cluster with these server options (`-c name=value ...`).
    pub fn start_with(settings: &str) -> Cluster {
        assert!(
            Path::new(PG_BIN).join("initdb").exists(),
            "{PG_BIN}/initdb missing: run services/up.sh pgvector to install PostgreSQL 15 + pgvector"
        );
        let dir = tempfile::Builder::new().prefix("dbbench-fault-pg").tempdir().unwrap();
        if is_root() {
            run(Command::new("chown").args(["postgres:", &dir.path().display().to_string()]), "chown");
        }
        let port = free_port();
        let opts = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 {settings}", dir.path().display());
        let cluster = Cluster { port, dir, opts };
        let data = cluster.data().display().to_string();
        run(
            pg_tool("initdb")
                .args(["-D", &data, "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--auth=trust"])
                .current_dir(cluster.dir.path()),
            "initdb",
        );
        let log = cluster.dir.path().join("log").display().to_string();
        run(
            pg_tool("pg_ctl")
                .args(["-D", &data, "-o", &cluster.opts, "-l", &log, "-w", "-t", "60", "start"])
                .current_dir(cluster.dir.path()),
            "pg_ctl start",
        );
        run(
            pg_tool("psql")
                .args([
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &cluster.port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                ])
                .args(["-c", "CREATE EXTENSION vector"])
                .current_dir(cluster.dir.path()),
            "CREATE EXTENSION vector",
        );
        cluster
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn kill(&self) {
        let data = self.data().display().to_string();
        run(
            pg_tool("pg_ctl").args(["-D", &data, "stop", "-m", "immediate", "-w"]).current_dir(self.dir.path()),
            "pg_ctl stop -m immediate",
        );
    }
}

impl Cluster {
    /// Run the cluster as `services/up.sh` runs an engine, under the name `pgvector` in
    /// `services` (a `DBBENCH_SERVICES_DIR`): its pid file written there, with an `up`
    /// script that starts it (if it is not running) and records its pid, and a `down`
    /// script that stops it. Returns (up, down).
    pub fn as_service(&self, services: &Path) -> (PathBuf, PathBuf) {
        let state = services.join("pgvector");
        std::fs::create_dir_all(&state).unwrap();
        let pg_ctl =
            if is_root() { format!("runuser -u postgres -- {PG_BIN}/pg_ctl") } else { format!("{PG_BIN}/pg_ctl") };
        let data = self.data().display().to_string();
        let log = self.dir.path().join("log").display().to_string();
        let pid_file = state.join("pid").display().to_string();
        let up = self.dir.path().join("up.sh");
        let down = self.dir.path().join("down.sh");
        std::fs::write(
            &up,
            format!(
                "#!/bin/sh\nset -e\ncd {dir}\n{pg_ctl} -D {data} status >/dev/null 2>&1 || \
                 {pg_ctl} -D {data} -o '{opts}' -l {log} -w -t 60 start\n\
                 pid=$(head -n 1 {data}/postmaster.pid)\n\
                 printf '%s\\n%s\\n' \"$pid\" \"$(cut -d' ' -f22 /proc/$pid/stat)\" > {pid_file}\n",
                dir = self.dir.path().display(),
                opts = self.opts,
            ),
        )
        .unwrap();
        std::fs::write(
            &down,
            format!(
                "#!/bin/sh\nset -e\ncd {dir}\n{pg_ctl} -D {data} stop -m fast -w -t 60\nrm -f {pid_file}\n",
                dir = self.dir.path().display()
            ),
        )
        .unwrap();
        for f in [&up, &down] {
            run(Command::new("chmod").arg("+x").arg(f), "chmod");
        }
        run(&mut Command::new(&up), "up.sh");
        (up, down)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        if self.data().join("postmaster.pid").exists() {
            let _ = pg_tool("pg_ctl")
                .args(["-D", &data, "stop", "-m", "immediate", "-w"])
                .current_dir(self.dir.path())
                .output();
        }
    }
}
