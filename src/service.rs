//! An engine `services/up.sh` runs, as a recovery phase handles it: killed with SIGKILL
//! (the whole process tree at once, as a power cut or the kernel's OOM killer leaves it),
//! started again with the launcher, stopped cleanly with the stopper.
//!
//! Only a process the engine's pid file names, alive and with the start time recorded
//! beside it, is ever signalled (`resources::Watch::service`): a pid reused by something
//! else after a crash is never touched.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::resources::{self, Watch};

/// One engine of `services/`.
#[derive(Debug, Clone)]
pub struct Service {
    /// Its name for the launcher (`services/up.sh NAME`) and its pid file's folder.
    pub name: String,
    /// Where the launcher keeps every engine's state (`$DBBENCH_SERVICES_DIR`).
    pub services_dir: PathBuf,
    /// The launcher and the stopper, run with the name as their one argument.
    pub up: PathBuf,
    pub down: PathBuf,
}

impl Service {
    /// The engine's own state folder (`<services_dir>/<name>`): its data, log and pid file.
    pub fn state_dir(&self) -> PathBuf {
        self.services_dir.join(&self.name)
    }

    /// The running server, when the pid file names it; `Err` says why not.
    pub fn watch(&self) -> Result<Watch, String> {
        Watch::service(&self.services_dir, &self.name)
    }

    /// SIGKILL the server's process and every process below it, at once, and wait until
    /// they are gone. Returns what was killed, in words.
    pub fn kill(&self) -> Result<String, String> {
        let w = self.watch()?;
        let pids = resources::tree(w.pid);
        // A descendant may have exited on its own in between: `kill` then fails for it
        // alone; what matters is that none is left.
        let _ = signal(&pids, "KILL");
        // Until each is gone, not only dead: a server's own start-up check (PostgreSQL's
        // postmaster.pid) takes a zombie not yet reaped for a running server. A zombie
        // whose parent never reaps it is let be after a while.
        let deadline = Instant::now() + Duration::from_secs(10);
        while pids.iter().any(|p| exists(*p)) {
            if Instant::now() > deadline {
                if pids.iter().any(|p| alive(*p)) {
                    return Err(format!("{}: processes {pids:?} still alive 10 s after SIGKILL", self.name));
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(format!("SIGKILL to {} process(es) of {} ({})", pids.len(), self.name, w.what))
    }

    /// Start the launcher in the background (`up NAME`), its output appended to `log`.
    pub fn launch(&self, log: &Path) -> Result<tokio::process::Child, String> {
        self.script(&self.up, log)?.spawn().map_err(|e| format!("cannot run {}: {e}", self.up.display()))
    }

    /// Stop the server cleanly (`down NAME`) and wait for the stopper.
    pub async fn stop(&self, log: &Path) -> Result<(), String> {
        let status = self
            .script(&self.down, log)?
            .status()
            .await
            .map_err(|e| format!("cannot run {}: {e}", self.down.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{} {} failed ({status}); see {}", self.down.display(), self.name, log.display()))
        }
    }

    /// Start the server with the launcher and wait until the launcher says it is up.
    pub async fn start(&self, log: &Path) -> Result<(), String> {
        let status = self.launch(log)?.wait().await.map_err(|e| format!("{}: {e}", self.up.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{} {} failed ({status}); see {}", self.up.display(), self.name, log.display()))
        }
    }

    fn script(&self, script: &Path, log: &Path) -> Result<tokio::process::Command, String> {
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| format!("cannot open {}: {e}", log.display()))
        };
        // Absolute: the launcher changes folders, and a relative state folder would then
        // name another one.
        let state =
            std::path::absolute(&self.services_dir).map_err(|e| format!("{}: {e}", self.services_dir.display()))?;
        let mut cmd = tokio::process::Command::new(script);
        cmd.arg(&self.name)
            .env("DBBENCH_SERVICES_DIR", state)
            .stdin(Stdio::null())
            .stdout(open()?)
            .stderr(open()?)
            // A group of its own: a Ctrl-C at dbbench's terminal must not cut a start
            // or stop short and leave the engine half up.
            .process_group(0)
            .kill_on_drop(false);
        Ok(cmd)
    }
}

/// Send `SIG<name>` to `pids`; `Err` when one of them could not be signalled.
pub fn signal(pids: &[u32], name: &str) -> Result<(), String> {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .args(pids.iter().map(|p| p.to_string()))
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run kill: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -{name} {pids:?} failed ({status})"))
    }
}

fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rfind(')').and_then(|i| s.get(i + 2..i + 3)) != Some("Z"),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_takes_the_whole_tree_and_only_a_recorded_process() {
        let dir = tempfile::tempdir().unwrap();
        let svc = Service {
            name: "x".into(),
            services_dir: dir.path().to_path_buf(),
            up: "true".into(),
            down: "true".into(),
        };
        assert!(svc.kill().unwrap_err().contains("no pid file"), "nothing recorded: nothing killed");
        // A shell with a child of its own, detached as the launcher detaches a server (so
        // that not this test but init reaps it), recorded as the launcher records it.
        let out = std::process::Command::new("sh")
            .args(["-c", "sh -c 'sleep 60 & wait' >/dev/null 2>&1 & echo $!"])
            .output()
            .unwrap();
        let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let start = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let start = start[start.rfind(')').unwrap() + 2..].split_whitespace().nth(19).unwrap().to_string();
        std::fs::create_dir_all(dir.path().join("x")).unwrap();
        std::fs::write(dir.path().join("x/pid"), format!("{pid}\n999{start}\n")).unwrap();
        assert!(svc.kill().unwrap_err().contains("not the one recorded"), "a wrong start time protects the pid");
        std::fs::write(dir.path().join("x/pid"), format!("{pid}\n{start}\n")).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let grandchildren = resources::tree(pid);
        assert!(grandchildren.len() >= 2, "sh and its sleep: {grandchildren:?}");
        let what = svc.kill().unwrap();
        assert!(what.starts_with(&format!("SIGKILL to {} process(es) of x", grandchildren.len())), "{what}");
        assert!(grandchildren.iter().all(|p| !alive(*p)), "the shell and its sleep are gone");
    }
}
