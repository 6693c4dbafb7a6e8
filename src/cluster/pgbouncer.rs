//! A throwaway PgBouncer in front of a throwaway cluster.
//!
//! [`PgBouncer::start`] writes `pgbouncer.ini`, a userlist (`auth_file`) and an HBA file
//! (`auth_hba_file`) into a fresh temporary directory, starts `pgbouncer` (from `PGBOUNCER` if set,
//! else `pgbouncer` on `PATH`, else `/usr/sbin/pgbouncer`) in the foreground on a free TCP port of
//! `127.0.0.1` and on a unix socket inside the temporary directory, and waits until it accepts
//! connections. It is killed and the directory removed on drop (and, through the same guardian as a
//! [`Cluster`]'s, when the process dies).
//!
//! The pooler offers one database, the cluster's `pgdblink`, reached over the cluster's unix socket.
//! Client authentication (`auth_type = hba`), per [`Role`]:
//!
//! | role | client to PgBouncer | PgBouncer to the server |
//! |---|---|---|
//! | [`Role::Md5`] | `md5`, with the MD5 secret from `pg_authid` in the userlist | `md5` with that secret |
//! | [`Role::Scram`] | `scram-sha-256`, with the SCRAM secret from `pg_authid` | SCRAM with the client's keys |
//! | [`Role::Super`], [`Role::Trust`] | `trust` | `trust` |
//!
//! Every other role is rejected. When running as root, PgBouncer runs as the cluster's server user.

use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{
    Cluster, Guardian, PORT_ATTEMPTS, Role, START_TIMEOUT, conninfo, free_port, io_error,
    is_executable, log_since, log_tail, make_temp_dir,
};
use crate::{Error, ErrorKind};

/// The roles PgBouncer lets in, and its `auth_hba_file` method for each.
const ROLES: [(Role, &str); 4] = [
    (Role::Super, "trust"),
    (Role::Trust, "trust"),
    (Role::Md5, "md5"),
    (Role::Scram, "scram-sha-256"),
];

/// Settings for [`PgBouncer::start_with`].
#[derive(Clone, Debug)]
pub struct PgBouncerOptions {
    /// `pool_mode`: `"transaction"` by default.
    pub pool_mode: String,
    /// `default_pool_size` (server connections per user and database): 2 by default, so that
    /// consecutive transactions of one client can land on different server connections.
    pub default_pool_size: u32,
    /// `ignore_startup_parameters`: empty by default (every parameter PgBouncer does not track is
    /// rejected with `unsupported startup parameter`).
    pub ignore_startup_parameters: String,
    /// More `[pgbouncer]` settings as `(name, value)`, written last.
    pub extra: Vec<(String, String)>,
}

impl Default for PgBouncerOptions {
    fn default() -> PgBouncerOptions {
        PgBouncerOptions {
            pool_mode: "transaction".to_owned(),
            default_pool_size: 2,
            ignore_startup_parameters: String::new(),
            extra: Vec::new(),
        }
    }
}

/// A running PgBouncer in front of a [`Cluster`], killed and removed on drop.
///
/// ```no_run
/// use pgdblink::cluster::{Cluster, PgBouncer, Role};
///
/// let cluster = Cluster::shared()?;
/// let bouncer = PgBouncer::start(cluster)?;
/// let mut client = pgdblink::driver::Client::connect(&bouncer.conninfo(Role::Scram))?;
/// client.query("SELECT 1")?;
/// # Ok::<(), pgdblink::Error>(())
/// ```
pub struct PgBouncer {
    dir: PathBuf,
    socket_dir: PathBuf,
    log_path: PathBuf,
    port: u16,
    child: Child,
    guardian: Guardian,
}

impl std::fmt::Debug for PgBouncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBouncer")
            .field("dir", &self.dir)
            .field("port", &self.port)
            .field("pid", &self.child.id())
            .finish()
    }
}

impl PgBouncer {
    /// Starts PgBouncer in front of `cluster` with the default [`PgBouncerOptions`] (transaction
    /// pooling, two server connections per user).
    ///
    /// # Errors
    ///
    /// When no `pgbouncer` binary is found, a file cannot be written, the secrets cannot be read
    /// from the cluster, or PgBouncer does not accept connections within 30 s (the error carries
    /// its log).
    pub fn start(cluster: &Cluster) -> Result<PgBouncer, Error> {
        PgBouncer::start_with(cluster, PgBouncerOptions::default())
    }

    /// Starts PgBouncer in front of `cluster` with `opts`; see [`PgBouncer::start`].
    ///
    /// # Errors
    ///
    /// As [`PgBouncer::start`].
    pub fn start_with(cluster: &Cluster, opts: PgBouncerOptions) -> Result<PgBouncer, Error> {
        let binary = find_pgbouncer()?;
        let dir = make_temp_dir(cluster.run_as)?;
        let mut guardian = Guardian::spawn(&dir)?;
        let socket_dir = dir.join("sock");
        let log_path = dir.join("pgbouncer.log");
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&socket_dir)
            .map_err(|e| io_error(&format!("creating {}", socket_dir.display()), e))?;
        if let Some(user) = cluster.run_as {
            std::os::unix::fs::chown(&socket_dir, Some(user.uid), Some(user.gid))
                .map_err(|e| io_error(&format!("chown {}", socket_dir.display()), e))?;
        }
        write_file(&dir.join("userlist.txt"), &userlist(cluster)?)?;
        write_file(&dir.join("hba.conf"), &hba())?;

        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            write_file(
                &dir.join("pgbouncer.ini"),
                &ini(cluster, &dir, &socket_dir, port, &opts),
            )?;
            let log = fs::File::create(&log_path)
                .map_err(|e| io_error(&format!("creating {}", log_path.display()), e))?;
            let log2 = log
                .try_clone()
                .map_err(|e| io_error("duplicating the log file handle", e))?;
            let mut cmd = Command::new(&binary);
            cmd.arg(dir.join("pgbouncer.ini"))
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2)
                // Not in our process group: a Ctrl-C must not kill it before the guardian does.
                .process_group(0);
            if let Some(user) = cluster.run_as {
                cmd.uid(user.uid).gid(user.gid).env("HOME", &dir);
            }
            let mut child = cmd
                .spawn()
                .map_err(|e| io_error(&format!("starting {}", binary.display()), e))?;
            guardian.watch(child.id());
            match wait_until_accepting(&mut child, port, &socket_dir, &log_path) {
                Ok(()) => {
                    return Ok(PgBouncer {
                        dir,
                        socket_dir,
                        log_path,
                        port,
                        child,
                        guardian,
                    });
                }
                // The port got taken meanwhile (the process has exited): try another.
                Err(None) => guardian.watch(0),
                Err(Some(e)) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    guardian.watch(0);
                    return Err(e);
                }
            }
        }
        Err(Error::new(
            ErrorKind::Other,
            format!("PgBouncer could not bind a free port after {PORT_ATTEMPTS} attempts"),
        ))
    }

    /// The TCP port PgBouncer listens on, on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding PgBouncer's unix socket `.s.PGSQL.<port>`.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The process id of PgBouncer.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A key=value connection string for `role` through PgBouncer over TCP, e.g.
    /// `"host=127.0.0.1 port=6432 dbname=pgdblink user=md5_user password=pencil"`.
    pub fn conninfo(&self, role: Role) -> String {
        conninfo("127.0.0.1", self.port, role)
    }

    /// PgBouncer's log so far (for diagnosing test failures).
    pub fn log(&self) -> String {
        log_since(&self.log_path, 0)
    }

    /// Stops PgBouncer and removes its directory now (what dropping it does).
    pub fn stop(self) {}
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // SIGKILL: PgBouncer's SIGINT waits for its clients; nothing here needs a clean shutdown.
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.guardian.watch(0);
        // Dropping `self.guardian` closes its pipe and waits for the directory's removal.
    }
}

/// Waits until PgBouncer accepts connections on `port` (TCP) and has made its unix socket;
/// `Err(None)` when it exited because the port was taken.
fn wait_until_accepting(
    child: &mut Child,
    port: u16,
    socket_dir: &Path,
    log_path: &Path,
) -> Result<(), Option<Error>> {
    let deadline = Instant::now() + START_TIMEOUT;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let unix_socket = socket_dir.join(format!(".s.PGSQL.{port}"));
    loop {
        match child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => {
                let log = log_since(log_path, 0);
                if log.contains("Address already in use") {
                    return Err(None);
                }
                return Err(Some(Error::new(
                    ErrorKind::Other,
                    format!("PgBouncer exited during startup ({status}); its log:\n{log}"),
                )));
            }
            Err(e) => return Err(Some(io_error("waiting for PgBouncer", e))),
        }
        if unix_socket.exists()
            && TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Some(Error::new(
                ErrorKind::Other,
                format!(
                    "PgBouncer did not accept connections on port {port} within {} s; its log:\n{}",
                    START_TIMEOUT.as_secs(),
                    log_tail(log_path)
                ),
            )));
        }
        // Nothing to block on until PgBouncer listens: look at the port again shortly.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The `pgbouncer` binary: `PGBOUNCER`, else `pgbouncer` on `PATH`, else `/usr/sbin/pgbouncer`.
fn find_pgbouncer() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os("PGBOUNCER").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if is_executable(&path) {
            return Ok(path);
        }
        return Err(Error::new(
            ErrorKind::Other,
            format!("PGBOUNCER={} is not an executable file", path.display()),
        ));
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("pgbouncer"));
    on_path
        .chain([PathBuf::from("/usr/sbin/pgbouncer")])
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Other,
                "pgbouncer not found: install the pgbouncer package or put pgbouncer on PATH (or \
                 set PGBOUNCER to the binary)",
            )
        })
}

/// The `auth_file`: each role's secret as `pg_authid` holds it (MD5 or SCRAM), empty for trust.
fn userlist(cluster: &Cluster) -> Result<String, Error> {
    let mut out = String::new();
    for (role, method) in ROLES {
        let secret = if method == "trust" {
            String::new()
        } else {
            cluster.super_query(&format!(
                "SELECT rolpassword FROM pg_authid WHERE rolname = '{}'",
                role.user()
            ))?
        };
        out.push_str(&format!("\"{}\" \"{}\"\n", role.user(), secret));
    }
    Ok(out)
}

/// The `auth_hba_file`: one line per role of [`ROLES`], everything else rejected.
fn hba() -> String {
    let mut out = String::from("# pgdblink throwaway PgBouncer\n");
    for (role, method) in ROLES {
        let user = role.user();
        out.push_str(&format!("local all {user} {method}\n"));
        out.push_str(&format!("host all {user} 127.0.0.1/32 {method}\n"));
    }
    out.push_str("local all all reject\nhost all all 0.0.0.0/0 reject\n");
    out
}

/// `pgbouncer.ini`.
fn ini(
    cluster: &Cluster,
    dir: &Path,
    socket_dir: &Path,
    port: u16,
    opts: &PgBouncerOptions,
) -> String {
    let server_socket = cluster.socket_dir.to_string_lossy().replace('\'', "\\'");
    let mut settings: Vec<(&str, String)> = vec![
        ("listen_addr", "127.0.0.1".to_owned()),
        ("listen_port", port.to_string()),
        ("unix_socket_dir", socket_dir.to_string_lossy().into_owned()),
        ("auth_type", "hba".to_owned()),
        (
            "auth_hba_file",
            dir.join("hba.conf").to_string_lossy().into_owned(),
        ),
        (
            "auth_file",
            dir.join("userlist.txt").to_string_lossy().into_owned(),
        ),
        ("admin_users", Role::Super.user().to_owned()),
        ("pool_mode", opts.pool_mode.clone()),
        ("default_pool_size", opts.default_pool_size.to_string()),
        ("max_client_conn", "1000".to_owned()),
        ("server_login_retry", "1".to_owned()),
        ("log_connections", "0".to_owned()),
        ("log_disconnections", "0".to_owned()),
    ];
    if !opts.ignore_startup_parameters.is_empty() {
        settings.push((
            "ignore_startup_parameters",
            opts.ignore_startup_parameters.clone(),
        ));
    }
    let mut out = format!(
        "[databases]\n{db} = host='{server_socket}' port={port} dbname={db}\n\n[pgbouncer]\n",
        db = cluster.database(),
        port = cluster.port(),
    );
    let extra = opts.extra.iter().map(|(k, v)| (k.as_str(), v.clone()));
    for (name, value) in settings.into_iter().chain(extra) {
        out.push_str(&format!("{name} = {value}\n"));
    }
    out
}

fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    fs::File::create(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| io_error(&format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current_user(conninfo: &str) -> Result<String, Error> {
        let mut client = crate::driver::Client::connect(conninfo)?;
        let results = client.query("SELECT current_user")?;
        match results.first() {
            Some(crate::QueryResult::Rows(rows)) => Ok(rows.get(0, 0).unwrap_or("").to_owned()),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn pgbouncer_starts_authenticates_and_goes() {
        let cluster = Cluster::shared().unwrap();
        let bouncer = PgBouncer::start(cluster).unwrap();
        let dir = bouncer.dir.clone();
        let port = bouncer.port();
        assert_ne!(port, cluster.port());
        assert!(
            bouncer
                .socket_dir()
                .join(format!(".s.PGSQL.{port}"))
                .exists()
        );
        for role in [Role::Md5, Role::Scram, Role::Trust, Role::Super] {
            assert_eq!(
                current_user(&bouncer.conninfo(role)).unwrap(),
                role.user(),
                "{}",
                bouncer.log()
            );
        }
        let wrong = bouncer.conninfo(Role::Scram).replace("pencil", "crayon");
        let err = current_user(&wrong).unwrap_err().to_string();
        // PgBouncer's own text (PostgreSQL says "password authentication failed for user ...").
        assert!(err.contains("SASL authentication failed"), "{err}");
        let err = current_user(&bouncer.conninfo(Role::Password))
            .unwrap_err()
            .to_string();
        assert!(err.contains("login rejected"), "{err}");
        bouncer.stop();
        assert!(!dir.exists(), "{} still exists", dir.display());
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
