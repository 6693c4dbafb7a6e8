//! Streaming standbys of a throwaway cluster, promotion, and stopping/starting a server in place.
//!
//! [`Cluster::start_standby`] takes a base backup of a running cluster with `pg_basebackup -R -X
//! stream` (over the primary's unix socket, as the superuser, which every cluster's `pg_hba.conf` lets
//! in for replication) into a new temporary directory, gives it its own socket directory and a free
//! port, starts it, and waits until it is a hot standby streaming from the primary. The standby is an
//! ordinary [`Cluster`]: same roles, same database, removed on drop like any other.
//!
//! [`Cluster::promote`] turns a standby into a primary; [`Cluster::stop_server`] and
//! [`Cluster::start_server`] take a server down and bring it back on the same port ("primary down"
//! tests), its data directory kept.

use std::fs;
use std::io::Write;
use std::process::Stdio;

use super::{
    Cluster, Guardian, Role, START_TIMEOUT, Setup, StartError, free_port, io_error, log_tail,
    make_temp_dir,
};
use crate::{Error, ErrorKind};

impl Cluster {
    /// Starts a streaming standby of this cluster: `pg_basebackup -R -X stream` into a new temporary
    /// directory, started on a free port of `127.0.0.1` and on its own unix socket, then waits until
    /// it is in recovery (`pg_is_in_recovery()`), its WAL receiver is `streaming`, and this cluster's
    /// `pg_stat_replication` shows a streaming standby.
    ///
    /// The standby has this cluster's roles, database and settings; its `primary_conninfo` names this
    /// cluster's unix socket. It is removed on drop (before or after the primary).
    ///
    /// # Errors
    ///
    /// When the base backup or the start fails (the error carries the tool's output or the server
    /// log), or the standby is not streaming within 30 s.
    pub fn start_standby(&self) -> Result<Cluster, Error> {
        let dir = make_temp_dir(self.run_as)?;
        let mut guardian = Guardian::spawn(&dir)?;
        let data_dir = dir.join("data");
        let socket_dir = dir.join("sock");
        let log_path = dir.join("server.log");
        let setup = Setup {
            bin_dir: &self.bin_dir,
            dir: &dir,
            run_as: self.run_as,
        };
        setup.make_socket_dir_and_log(&socket_dir, &log_path)?;

        let mut backup = setup.command("pg_basebackup");
        backup
            .arg("-D")
            .arg(&data_dir)
            .arg("-h")
            .arg(&self.socket_dir)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", Role::Super.user(), "-R", "-X", "stream", "-c", "fast"])
            .arg("--no-sync");
        setup.run(backup, None, &mut guardian, "pg_basebackup")?;

        // The copied postgresql.conf names the primary's socket directory: the standby gets its own
        // (the last setting wins). Everything else (fsync off, max_connections, ...) is inherited.
        let conf_path = data_dir.join("postgresql.conf");
        let socket = socket_dir.to_string_lossy().replace('\'', "''");
        fs::OpenOptions::new()
            .append(true)
            .open(&conf_path)
            .and_then(|mut f| {
                writeln!(
                    f,
                    "\n# pgdblink standby\nunix_socket_directories = '{socket}'\n\
                     hot_standby = 'on'\nwal_receiver_status_interval = '1s'\n\
                     wal_retrieve_retry_interval = '100ms'"
                )
            })
            .map_err(|e| io_error(&format!("writing {}", conf_path.display()), e))?;

        let mut attempt = 0;
        let (postmaster, port) = loop {
            attempt += 1;
            let port = free_port()?;
            let started =
                setup.start_postmaster(&data_dir, &log_path, port, self.version, &mut guardian);
            match started {
                Ok(child) => break (child, port),
                Err(StartError::PortTaken) if attempt < super::PORT_ATTEMPTS => continue,
                Err(StartError::PortTaken) => {
                    return Err(Error::new(
                        ErrorKind::Other,
                        format!(
                            "the standby could not bind a free port; server log:\n{}",
                            log_tail(&log_path)
                        ),
                    ));
                }
                Err(StartError::Failed(e)) => return Err(e),
            }
        };
        let standby = Cluster {
            dir,
            data_dir,
            socket_dir,
            log_path,
            bin_dir: self.bin_dir.clone(),
            port,
            version: self.version,
            postmaster,
            guardian,
            run_as: self.run_as,
            tls: self.tls.clone(),
        };
        standby.wait_until_streaming(self)?;
        Ok(standby)
    }

    /// Waits until this server is in recovery with its WAL receiver streaming, and `primary` shows a
    /// streaming standby in `pg_stat_replication`.
    ///
    /// # Errors
    ///
    /// When that is not so within 30 s, or a query fails.
    pub fn wait_until_streaming(&self, primary: &Cluster) -> Result<(), Error> {
        self.wait_for(
            "streaming from the primary",
            "pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver \
             WHERE status = 'streaming')",
        )?;
        primary.wait_for(
            "a streaming standby in pg_stat_replication",
            "EXISTS (SELECT 1 FROM pg_stat_replication WHERE state = 'streaming')",
        )
    }

    /// Waits until this standby has replayed everything `primary` has written so far (its current
    /// WAL insert position, which counts commits not yet flushed under `synchronous_commit = off`),
    /// so that a change made on the primary is visible here.
    ///
    /// # Errors
    ///
    /// When that is not so within 30 s, or a query fails.
    pub fn wait_for_replay(&self, primary: &Cluster) -> Result<(), Error> {
        let lsn = primary.super_query("SELECT pg_current_wal_insert_lsn()")?;
        self.wait_for(
            &format!("replay up to {lsn}"),
            &format!("pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"),
        )
    }

    /// Whether the server is in recovery (a standby): `SELECT pg_is_in_recovery()`.
    ///
    /// # Errors
    ///
    /// When the query fails.
    pub fn is_in_recovery(&self) -> Result<bool, Error> {
        Ok(self.super_query("SELECT pg_is_in_recovery()")? == "t")
    }

    /// Promotes this standby to a primary (`pg_ctl promote`) and waits until it is out of recovery
    /// (`pg_is_in_recovery()` false) and accepts writes.
    ///
    /// # Errors
    ///
    /// When `pg_ctl` fails (e.g. the server is not a standby) or the promotion does not finish
    /// within 30 s.
    pub fn promote(&self) -> Result<(), Error> {
        let mut cmd = self.setup().command("pg_ctl");
        cmd.args(["promote", "-w", "-t", "30", "-D"])
            .arg(&self.data_dir)
            .stdin(Stdio::null());
        let output = cmd
            .output()
            .map_err(|e| io_error("running pg_ctl promote", e))?;
        if !output.status.success() {
            return Err(Error::new(
                ErrorKind::Other,
                format!(
                    "pg_ctl promote failed ({}):\n{}{}",
                    output.status,
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            ));
        }
        // pg_ctl waits already (PostgreSQL 10 and later); make sure recovery has ended and a new
        // transaction accepts writes (read-only-ness is fixed when a transaction starts).
        self.wait_for(
            "the end of recovery after promotion",
            "NOT pg_is_in_recovery()",
        )?;
        match self.super_query("SELECT current_setting('transaction_read_only')")? {
            v if v == "off" => Ok(()),
            v => Err(Error::new(
                ErrorKind::Other,
                format!(
                    "server on port {}: still read-only after promotion ({v})",
                    self.port
                ),
            )),
        }
    }

    /// Stops the server (fast shutdown: running sessions are ended) and waits until it has exited;
    /// the data directory and port stay for [`Cluster::start_server`]. Does nothing when it is
    /// already stopped.
    ///
    /// # Errors
    ///
    /// When the server cannot be signalled or does not exit within 30 s.
    pub fn stop_server(&mut self) -> Result<(), Error> {
        if self.postmaster.try_wait().ok().flatten().is_some() {
            return Ok(());
        }
        // SIGINT: fast shutdown. `kill` runs as ourselves (root may signal the server's user).
        let pid = self.postmaster.id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .map_err(|e| io_error("running kill", e))?;
        if !status.success() {
            return Err(Error::new(
                ErrorKind::Other,
                format!("kill -INT {pid} failed ({status})"),
            ));
        }
        // Block on the exit itself; a watchdog kills the server if the fast shutdown hangs.
        let (done, stop_watchdog) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            let hung = matches!(
                stop_watchdog.recv_timeout(START_TIMEOUT),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout)
            );
            if hung {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid])
                    .status();
            }
            hung
        });
        let waited = self.postmaster.wait();
        let _ = done.send(());
        let hung = watchdog.join().unwrap_or(false);
        waited.map_err(|e| io_error("waiting for the postmaster", e))?;
        if hung {
            return Err(Error::new(
                ErrorKind::Other,
                format!(
                    "the server did not stop within {} s (killed); server log:\n{}",
                    START_TIMEOUT.as_secs(),
                    log_tail(&self.log_path)
                ),
            ));
        }
        self.guardian.watch(0);
        Ok(())
    }

    /// Starts the server again after [`Cluster::stop_server`], on the same port, and waits until it
    /// accepts connections (a standby: until it accepts read-only ones). Does nothing when it runs.
    ///
    /// # Errors
    ///
    /// When the port got taken meanwhile or the server does not start within 30 s.
    pub fn start_server(&mut self) -> Result<(), Error> {
        if self.postmaster.try_wait().ok().flatten().is_none() {
            return Ok(());
        }
        let setup = Setup {
            bin_dir: &self.bin_dir,
            dir: &self.dir,
            run_as: self.run_as,
        };
        let started = setup.start_postmaster(
            &self.data_dir,
            &self.log_path,
            self.port,
            self.version,
            &mut self.guardian,
        );
        match started {
            Ok(child) => {
                self.postmaster = child;
                Ok(())
            }
            Err(StartError::PortTaken) => Err(Error::new(
                ErrorKind::Other,
                format!(
                    "the server could not start again: port {} was taken meanwhile",
                    self.port
                ),
            )),
            Err(StartError::Failed(e)) => Err(e),
        }
    }

    /// What the setup steps of this cluster need.
    fn setup(&self) -> Setup<'_> {
        Setup {
            bin_dir: &self.bin_dir,
            dir: &self.dir,
            run_as: self.run_as,
        }
    }

    /// Waits on the server until `condition` (an SQL boolean expression) holds: one statement
    /// looping inside the server (live functions, no snapshot), failing after 30 s.
    fn wait_for(&self, what: &str, condition: &str) -> Result<(), Error> {
        let limit = START_TIMEOUT.as_secs();
        let what = what.replace('\'', "''");
        let sql = format!(
            "DO $wait$ DECLARE started timestamptz := clock_timestamp(); BEGIN \
               LOOP \
                 EXIT WHEN ({condition}); \
                 IF clock_timestamp() - started > interval '{limit} s' THEN \
                   RAISE EXCEPTION 'no {what} within {limit} s'; \
                 END IF; \
                 PERFORM pg_sleep(0.005); \
               END LOOP; \
             END $wait$"
        );
        let mut client = crate::driver::Client::connect(&self.conninfo_unix(Role::Super))?;
        client.query(&sql).map(drop).map_err(|e| {
            Error::new(
                ErrorKind::Other,
                format!(
                    "server on port {}: {e}; server log:\n{}",
                    self.port,
                    log_tail(&self.log_path)
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `sql` (no result wanted) as the superuser.
    fn exec(cluster: &Cluster, sql: &str) -> Result<(), Error> {
        let mut client = crate::driver::Client::connect(&cluster.conninfo_unix(Role::Super))?;
        client.query(sql).map(drop)
    }

    #[test]
    fn standby_streams_stops_starts_and_promotes() {
        let mut primary = Cluster::start_with(super::super::ClusterOptions {
            max_connections: Some(30),
            ..Default::default()
        })
        .unwrap();
        let standby = primary.start_standby().unwrap();
        assert!(standby.is_in_recovery().unwrap());
        assert!(!primary.is_in_recovery().unwrap());
        assert_ne!(standby.port(), primary.port());
        assert_ne!(standby.socket_dir(), primary.socket_dir());

        // A change on the primary shows on the standby.
        exec(&primary, "CREATE TABLE standby_probe AS SELECT 42 AS v").unwrap();
        standby.wait_for_replay(&primary).unwrap();
        assert_eq!(
            standby.super_query("SELECT v FROM standby_probe").unwrap(),
            "42"
        );

        // Primary down, then up again on the same port; the standby streams again.
        let port = primary.port();
        primary.stop_server().unwrap();
        assert!(primary.super_query("SELECT 1").is_err());
        primary.stop_server().unwrap();
        primary.start_server().unwrap();
        assert_eq!(primary.port(), port);
        standby.wait_until_streaming(&primary).unwrap();

        standby.promote().unwrap();
        assert!(!standby.is_in_recovery().unwrap());
        exec(&standby, "CREATE TABLE promoted AS SELECT 1 AS v").unwrap();
        assert!(primary.promote().is_err(), "a primary cannot be promoted");

        let dir = standby.dir.clone();
        standby.stop();
        assert!(!dir.exists(), "{} still exists", dir.display());
    }
}
