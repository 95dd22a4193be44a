//! A PostgreSQL primary and its streaming standby, two throwaway clusters on free ports
//! under the temporary directory, started and removed by the test.
//!
//! The test's own primary rather than the server the other tests share: a base backup of
//! the shared server needs a `replication` line in its `pg_hba.conf` (Debian's packaged
//! cluster has none) and would copy every other test's schema, while `initdb` writes a
//! `pg_hba.conf` that trusts replication from 127.0.0.1, and an empty cluster's base
//! backup takes a second. PostgreSQL refuses to run as root: run as root, the clusters run
//! as the `postgres` user through `runuser`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The binaries a cluster needs, looked up on `PATH` and then in Debian's
/// `/usr/lib/postgresql/<version>/bin`.
const BINARIES: [&str; 4] = ["initdb", "pg_ctl", "pg_basebackup", "psql"];

#[derive(Debug)]
pub struct Clusters {
    dir: PathBuf,
    bin: PathBuf,
    /// Commands run as this user through `runuser` (when the test runs as root).
    run_as: Option<&'static str>,
    pub primary_port: u16,
    pub standby_port: u16,
    primary_up: bool,
    standby_up: bool,
}

fn found_in(dir: &Path) -> bool {
    BINARIES.iter().all(|b| dir.join(b).is_file())
}

fn bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    // Highest version first.
    debian.sort_by(|a, b| b.cmp(a));
    // Every binary from one directory: PATH may mix versions (or name wrappers).
    debian.into_iter().chain(on_path).find(|d| found_in(d))
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Clusters {
    /// Starts both clusters and waits until the standby accepts reads; `Err` says why this
    /// machine cannot (the test then skips).
    pub fn start() -> Result<Clusters, String> {
        let bin = bin_dir().ok_or_else(|| {
            format!(
                "no directory holds all of {} (PATH, /usr/lib/postgresql/*/bin)",
                BINARIES.join(", ")
            )
        })?;
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .map_err(|e| format!("cannot tell the user the test runs as: {e}"))?;
        let run_as = root.then_some("postgres");
        if root {
            let has_runuser = Command::new("runuser").arg("--help").output().is_ok();
            let has_user = Command::new("id")
                .arg("postgres")
                .output()
                .is_ok_and(|o| o.status.success());
            if !has_runuser || !has_user {
                return Err(
                    "running as root, and PostgreSQL needs `runuser` and a `postgres` user to run as"
                        .into(),
                );
            }
        }
        let dir = std::env::temp_dir().join(format!(
            "cessio-standby-{}-{}",
            std::process::id(),
            free_port()?
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut clusters = Clusters {
            dir,
            bin,
            run_as,
            primary_port: free_port()?,
            standby_port: free_port()?,
            primary_up: false,
            standby_up: false,
        };
        if let Some(user) = run_as {
            let out = Command::new("chown")
                .args([user, &clusters.dir.display().to_string()])
                .output()
                .map_err(|e| format!("chown: {e}"))?;
            if !out.status.success() {
                return Err(format!("chown {user}: {}", output_text(&out)));
            }
        }
        clusters.init_primary()?;
        clusters.backup_standby()?;
        Ok(clusters)
    }

    fn command(&self, binary: &str) -> Command {
        let path = self.bin.join(binary);
        match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn run(&self, what: &str, command: &mut Command) -> Result<String, String> {
        let out = command
            .output()
            .map_err(|e| format!("{what}: cannot run: {e}"))?;
        if !out.status.success() {
            return Err(format!("{what} failed: {}", output_text(&out)));
        }
        Ok(output_text(&out))
    }

    fn data(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Starts a cluster's server on `port`, waiting until it accepts connections.
    fn pg_ctl_start(&self, name: &str, port: u16) -> Result<(), String> {
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c shared_buffers=16MB -c max_connections=40",
            self.dir.display()
        );
        self.run(
            &format!("starting the {name}"),
            self.command("pg_ctl").args([
                "-D",
                &self.data(name),
                "-o",
                &options,
                "-l",
                &self.data(&format!("{name}.log")),
                "-w",
                "-t",
                "60",
                "start",
            ]),
        )
        .map(|_| ())
        .map_err(|e| format!("{e}\n{}", self.log(name)))
    }

    fn init_primary(&mut self) -> Result<(), String> {
        self.run(
            "initdb",
            self.command("initdb").args([
                "-D",
                &self.data("primary"),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ]),
        )?;
        self.pg_ctl_start("primary", self.primary_port)?;
        self.primary_up = true;
        Ok(())
    }

    /// The standby: a base backup of the primary streaming its WAL (`-X stream`), with
    /// `-R` writing `standby.signal` and the `primary_conninfo` it follows.
    fn backup_standby(&mut self) -> Result<(), String> {
        self.run(
            "pg_basebackup",
            self.command("pg_basebackup").args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.primary_port.to_string(),
                "-U",
                "postgres",
                "-D",
                &self.data("standby"),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ]),
        )?;
        self.pg_ctl_start("standby", self.standby_port)?;
        self.standby_up = true;
        Ok(())
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log")))
            .map(|l| format!("{name}.log:\n{l}"))
            .unwrap_or_default()
    }

    pub fn primary_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.primary_port
        )
    }

    pub fn standby_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.standby_port
        )
    }

    /// Runs SQL on the standby (`pg_wal_replay_pause()` and `_resume()`, which need a
    /// superuser the store's read-only connections are not meant to be).
    pub fn standby_sql(&self, sql: &str) -> Result<String, String> {
        self.run(
            sql,
            self.command("psql").args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.standby_port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-Atc",
                sql,
            ]),
        )
    }

    fn stop(&self, name: &str) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.data(name), "-m", "immediate", "-w", "stop"])
            .output();
    }

    /// Stops the standby at once, as a crash or a lost machine would.
    pub fn stop_standby(&mut self) {
        if std::mem::take(&mut self.standby_up) {
            self.stop("standby");
        }
        // The port no longer answers.
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for Clusters {
    fn drop(&mut self) {
        self.stop_standby();
        if std::mem::take(&mut self.primary_up) {
            self.stop("primary");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
