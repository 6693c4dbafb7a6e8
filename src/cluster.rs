//! A throwaway PostgreSQL cluster for tests, benchmarks and the binary.
//!
//! [`Cluster::start`] runs `initdb` in a fresh temporary directory, configures the cluster for speed
//! (no fsync), creates one login role per authentication method (see [`Role`]) and starts the
//! `postmaster` on a free TCP port of `127.0.0.1` and on a unix socket inside the temporary directory.
//!
//! The temporary directory (`$TMPDIR/pgdblink-<pid>-<n>-<time>`, mode 0700) holds `data/`, the
//! socket directory `sock/` and the server log `server.log`. The server binaries are taken from
//! `PG_BIN_DIR` if set, else from `initdb` on `PATH`, else from the highest
//! `/usr/lib/postgresql/*/bin`. PostgreSQL 10 or later is needed (SCRAM).
//!
//! When running as root (initdb and postgres refuse to), the server runs as the `postgres` user from
//! `/etc/passwd`, or `nobody` if there is none.
//!
//! With [`ClusterOptions::tls`] the server also speaks TLS (`ssl = on`) with certificates made at start
//! (see [`TlsFiles`] and [`ServerCert`]): they live in `tls/` inside the temporary directory and go with
//! it. TLS is off by default: libpq's default `sslmode=prefer` would otherwise move every existing
//! test and benchmark that says nothing about TLS onto TLS.
//!
//! Cleanup survives panics and abrupt exits: every cluster has a *guardian*, a small `sh` process in
//! its own process group that blocks reading a pipe whose write end the [`Cluster`] holds. When the
//! pipe closes — the cluster is dropped, or the whole process exits or is killed — the guardian shuts
//! the server down (SIGINT, then SIGKILL after 10 s) and removes the temporary directory.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{Error, ErrorKind};

mod pgbouncer;
mod standby;
mod tls;

pub use pgbouncer::{PgBouncer, PgBouncerOptions};
pub use tls::{ServerCert, TlsFiles};

/// The database every role can use (created by [`Cluster::start`]).
const DATABASE: &str = "pgdblink";
/// The password of the [`Role::Password`], [`Role::Md5`] and [`Role::Scram`] roles.
const PASSWORD: &str = "pencil";
/// How long the postmaster may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How many ports are tried when the chosen one is taken before the server binds it.
const PORT_ATTEMPTS: usize = 5;
/// Longest unix socket path (`sun_path` is 108 bytes including the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The guardian's script: `$1` is the temporary directory. Every line read from stdin is the pid of
/// the cluster's current child process (`0`: none); at end of input it is stopped and `$1` removed.
/// A zombie counts as gone: once our process is gone the postmaster is reparented, and the new
/// parent (PID 1 in a container) may reap it late or never.
const GUARDIAN_SCRIPT: &str = r#"trap '' INT HUP
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  s=${s##*) }
  case $s in Z*|X*) return 1;; esac
  return 0
}
p=0
while read -r l; do p=$l; done
if [ "$p" -gt 0 ] 2>/dev/null; then
  kill -INT "$p" 2>/dev/null
  i=0
  while alive "$p" && [ "$i" -lt 200 ]; do sleep 0.05; i=$((i+1)); done
  kill -KILL "$p" 2>/dev/null
fi
rm -rf "$1" 2>/dev/null || { sleep 1; rm -rf "$1"; }
"#;

/// One login role per authentication method, each with its own `pg_hba.conf` line.
///
/// Every role may connect to [`Cluster::database`] and create tables in its `public` schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// `pgdblink_super`: the bootstrap superuser, `trust` authentication.
    Super,
    /// `trust_user`: `trust` authentication (no password).
    Trust,
    /// `password_user`: `password` authentication (cleartext password).
    Password,
    /// `md5_user`: `md5` authentication, the password stored as an MD5 hash.
    Md5,
    /// `scram_user`: `scram-sha-256` authentication.
    Scram,
    /// `rejected_user`: an existing login role that `pg_hba.conf` rejects.
    Rejected,
    /// `ssl_only`: `trust` authentication, only over TLS (`hostssl` lines; no `local` line).
    SslOnly,
    /// `nossl_only`: `trust` authentication, only over plaintext TCP (`hostnossl` lines; no `local`
    /// line).
    NoSslOnly,
    /// `cert_user`: `cert` authentication over TLS (`hostssl`): a client certificate signed by the CA
    /// with CN `cert_user` ([`TlsFiles::client_cert`]). Only a cluster with TLS lets it in.
    Cert,
}

impl Role {
    /// Every role, in `pg_hba.conf` order.
    const ALL: [Role; 9] = [
        Role::Super,
        Role::Trust,
        Role::Password,
        Role::Md5,
        Role::Scram,
        Role::Rejected,
        Role::SslOnly,
        Role::NoSslOnly,
        Role::Cert,
    ];

    /// The role's user name, e.g. `"md5_user"`.
    pub fn user(self) -> &'static str {
        match self {
            Role::Super => "pgdblink_super",
            Role::Trust => "trust_user",
            Role::Password => "password_user",
            Role::Md5 => "md5_user",
            Role::Scram => "scram_user",
            Role::Rejected => "rejected_user",
            Role::SslOnly => "ssl_only",
            Role::NoSslOnly => "nossl_only",
            Role::Cert => "cert_user",
        }
    }

    /// The role's password: `Some("pencil")` for [`Role::Password`], [`Role::Md5`] and
    /// [`Role::Scram`], `None` for the others.
    pub fn password(self) -> Option<&'static str> {
        match self {
            Role::Password | Role::Md5 | Role::Scram => Some(PASSWORD),
            Role::Super
            | Role::Trust
            | Role::Rejected
            | Role::SslOnly
            | Role::NoSslOnly
            | Role::Cert => None,
        }
    }

    /// The `pg_hba.conf` method of the role.
    fn hba_method(self) -> &'static str {
        match self {
            Role::Super | Role::Trust | Role::SslOnly | Role::NoSslOnly => "trust",
            Role::Password => "password",
            Role::Md5 => "md5",
            Role::Scram => "scram-sha-256",
            Role::Rejected => "reject",
            Role::Cert => "cert",
        }
    }

    /// The `pg_hba.conf` connection types of the role's lines: `local` and `host` (TLS or not) for
    /// the roles of every cluster, `hostssl` or `hostnossl` for the TLS roles.
    fn hba_types(self) -> &'static [&'static str] {
        match self {
            Role::SslOnly | Role::Cert => &["hostssl"],
            Role::NoSslOnly => &["hostnossl"],
            _ => &["local", "host"],
        }
    }
}

/// Settings for [`Cluster::start_with`].
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// `max_connections`; 600 when `None` (load tests open 500 connections).
    pub max_connections: Option<u32>,
    /// More `postgresql.conf` settings as `(name, value)`, appended last (so they win). Values are
    /// written single-quoted, which PostgreSQL accepts for every type.
    pub extra_conf: Vec<(String, String)>,
    /// TLS: certificates made at start ([`Cluster::tls`]), `ssl = on` with the CA's
    /// [`ServerCert::Full`], client certificates checked against the CA and its CRL. Off by default.
    pub tls: bool,
}

/// A throwaway PostgreSQL server, stopped and removed on drop.
///
/// The server listens on `127.0.0.1:`[`port`](Cluster::port) and on a unix socket in
/// [`socket_dir`](Cluster::socket_dir); the roles of [`Role`] can connect to
/// [`database`](Cluster::database).
///
/// ```no_run
/// use pgdblink::cluster::{Cluster, Role};
///
/// // One server for the whole process, removed at exit:
/// let cluster = Cluster::shared()?;
/// let conninfo = cluster.conninfo(Role::Scram);
/// assert!(conninfo.contains("user=scram_user password=pencil"));
///
/// // A private one, removed when dropped:
/// let own = Cluster::start()?;
/// println!("listening on port {}, log so far:\n{}", own.port(), own.log());
/// own.stop();
/// # Ok::<(), pgdblink::Error>(())
/// ```
pub struct Cluster {
    dir: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_path: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    version: u32,
    postmaster: Child,
    guardian: Guardian,
    run_as: Option<RunAs>,
    tls: Option<TlsFiles>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("dir", &self.dir)
            .field("port", &self.port)
            .field("version", &self.version)
            .field("tls", &self.tls.is_some())
            .field("pid", &self.postmaster.id())
            .finish()
    }
}

impl Cluster {
    /// Creates and starts a cluster with the default [`ClusterOptions`].
    ///
    /// Runs `initdb` in a fresh temporary directory, configures it, creates the roles of [`Role`]
    /// and the database `pgdblink`, starts the server on a free TCP port of `127.0.0.1` and on a unix
    /// socket in the temporary directory, and waits (up to 30 s) until it accepts connections.
    ///
    /// # Errors
    ///
    /// When no PostgreSQL server binaries are found (`PG_BIN_DIR`, `initdb` on `PATH`,
    /// `/usr/lib/postgresql/*/bin`), when running as root without an unprivileged user to run the
    /// server as, and when a step fails (the error carries the tool's output or the server log's tail).
    pub fn start() -> Result<Cluster, Error> {
        Cluster::start_with(ClusterOptions::default())
    }

    /// Creates and starts a cluster with `opts`; see [`Cluster::start`].
    ///
    /// # Errors
    ///
    /// As [`Cluster::start`].
    pub fn start_with(opts: ClusterOptions) -> Result<Cluster, Error> {
        let bin_dir = find_bin_dir()?;
        let run_as = server_user()?;
        let dir = make_temp_dir(run_as)?;
        // From here on the guardian removes `dir` whatever happens to this process.
        let mut guardian = Guardian::spawn(&dir)?;
        let data_dir = dir.join("data");
        let socket_dir = dir.join("sock");
        let log_path = dir.join("server.log");
        let setup = Setup {
            bin_dir: &bin_dir,
            dir: &dir,
            run_as,
        };

        setup.make_socket_dir_and_log(&socket_dir, &log_path)?;

        // initdb
        let mut initdb = setup.command("initdb");
        initdb
            .arg("-D")
            .arg(&data_dir)
            .args(["-U", Role::Super.user(), "--auth=trust", "-E", "UTF8"])
            .args(["--locale=C", "--no-sync"]);
        setup.run(initdb, None, &mut guardian, "initdb")?;

        let version = fs::read_to_string(data_dir.join("PG_VERSION"))
            .ok()
            .and_then(|v| v.trim().split('.').next()?.parse::<u32>().ok())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Other,
                    format!("initdb left no readable {}/PG_VERSION", data_dir.display()),
                )
            })?;

        let tls = if opts.tls {
            Some(TlsFiles::generate(&dir.join("tls"), run_as)?)
        } else {
            None
        };
        write_config(&data_dir, &socket_dir, &opts, tls.as_ref())?;

        // Roles and database, in single-user mode (no client library needed). Run on template1 so
        // that the public-schema grant is inherited by the new database.
        let mut single = setup.command("postgres");
        single.arg("--single").arg("-D").arg(&data_dir).args([
            "-F",
            "-c",
            "exit_on_error=true",
            "template1",
        ]);
        setup.run(
            single,
            Some(&setup_sql()),
            &mut guardian,
            "role setup (postgres --single)",
        )?;

        // Start, retrying on another port if the chosen one got taken meanwhile.
        let mut attempt = 0;
        let (postmaster, port) = loop {
            attempt += 1;
            let port = free_port()?;
            match setup.start_postmaster(&data_dir, &log_path, port, version, &mut guardian) {
                Ok(child) => break (child, port),
                Err(StartError::PortTaken) if attempt < PORT_ATTEMPTS => continue,
                Err(StartError::PortTaken) => {
                    return Err(Error::new(
                        ErrorKind::Other,
                        format!(
                            "PostgreSQL server could not bind a free port after {PORT_ATTEMPTS} \
                             attempts; server log:\n{}",
                            log_tail(&log_path)
                        ),
                    ));
                }
                Err(StartError::Failed(e)) => return Err(e),
            }
        };

        Ok(Cluster {
            dir,
            data_dir,
            socket_dir,
            log_path,
            bin_dir,
            port,
            version,
            postmaster,
            guardian,
            run_as,
            tls,
        })
    }

    /// The cluster shared by the whole process: started on first use, then returned to every caller
    /// (tests of one binary run in parallel threads and share it).
    ///
    /// It is never dropped; its guardian stops and removes it when the process exits, however it
    /// exits. A failed start is not retried: every call returns the same error.
    ///
    /// # Errors
    ///
    /// As [`Cluster::start`].
    pub fn shared() -> Result<&'static Cluster, Error> {
        static SHARED: OnceLock<Result<Cluster, Error>> = OnceLock::new();
        SHARED
            .get_or_init(Cluster::start)
            .as_ref()
            .map_err(Clone::clone)
    }

    /// A second cluster shared by the whole process, with TLS ([`ClusterOptions::tls`]); as
    /// [`Cluster::shared`] otherwise. Its server certificate stays [`ServerCert::Full`] (switching
    /// needs a cluster of one's own: [`Cluster::set_server_cert`]).
    ///
    /// # Errors
    ///
    /// As [`Cluster::start`].
    pub fn shared_tls() -> Result<&'static Cluster, Error> {
        static SHARED: OnceLock<Result<Cluster, Error>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                Cluster::start_with(ClusterOptions {
                    tls: true,
                    ..ClusterOptions::default()
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The cluster's TLS files, when started with [`ClusterOptions::tls`].
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// A key=value connection string for `role` over TCP with `sslmode`, made for host-name checks:
    /// `host=localhost hostaddr=127.0.0.1 port=... dbname=pgdblink user=... [password=...]
    /// sslmode=... sslrootcert=<CA>`, and for [`Role::Cert`] `sslcert`/`sslkey` naming the client
    /// certificate. Without TLS, only `sslmode` is added (no file names).
    pub fn conninfo_tls(&self, role: Role, sslmode: &str) -> String {
        let mut s = conninfo(
            &format!("{} hostaddr=127.0.0.1", tls::HOST_NAME),
            self.port,
            role,
        );
        s.push_str(" sslmode=");
        s.push_str(&quote_conninfo(sslmode));
        if let Some(tls) = &self.tls {
            let mut file = |key: &str, path: &Path| {
                s.push_str(&format!(
                    " {key}={}",
                    quote_conninfo(&path.to_string_lossy())
                ));
            };
            file("sslrootcert", &tls.ca_cert);
            if role == Role::Cert {
                file("sslcert", &tls.client_cert);
                file("sslkey", &tls.client_key);
            }
        }
        s
    }

    /// Makes the server present `which` from now on: installs it as `server.crt`/`server.key`,
    /// reloads the configuration (SIGHUP) and waits until the postmaster has reloaded it (until a
    /// new backend reports a new `pg_conf_load_time()`), so that every connection started after
    /// this returns sees `which`. Running connections keep their TLS session.
    ///
    /// # Errors
    ///
    /// When the cluster has no TLS, a file cannot be written, or the reload does not show within
    /// 30 s.
    pub fn set_server_cert(&mut self, which: ServerCert) -> Result<(), Error> {
        let Some(tls) = &self.tls else {
            return Err(Error::new(
                ErrorKind::Other,
                "set_server_cert: the cluster was started without TLS (ClusterOptions::tls)",
            ));
        };
        let before = self.conf_load_time()?;
        tls.install_server_cert(which, self.run_as)?;
        self.reload()?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.conf_load_time()? != before {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Other,
                    format!(
                        "the server did not reload its configuration within {} s; server log:\n{}",
                        START_TIMEOUT.as_secs(),
                        log_tail(&self.log_path)
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Asks the postmaster to reload its configuration files (`pg_reload_conf()`); returns at once.
    fn reload(&self) -> Result<(), Error> {
        self.super_query("SELECT pg_reload_conf()").map(drop)
    }

    /// `pg_conf_load_time()` as a new backend (forked after the postmaster's last reload) sees it.
    fn conf_load_time(&self) -> Result<String, Error> {
        self.super_query("SELECT pg_conf_load_time()")
    }

    /// Runs `sql` as the superuser over the unix socket on a new connection; its first value.
    fn super_query(&self, sql: &str) -> Result<String, Error> {
        let mut client = crate::driver::Client::connect(&self.conninfo_unix(Role::Super))?;
        let results = client.query(sql)?;
        match results.first() {
            Some(crate::QueryResult::Rows(rows)) => Ok(rows.get(0, 0).unwrap_or("").to_owned()),
            _ => Err(Error::new(
                ErrorKind::Other,
                format!("{sql}: no row returned"),
            )),
        }
    }

    /// The TCP port the server listens on, on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the server's unix socket `.s.PGSQL.<port>`.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The database every [`Role`] can use and create tables in: `"pgdblink"`.
    pub fn database(&self) -> &str {
        DATABASE
    }

    /// A key=value connection string for `role` over TCP, e.g.
    /// `"host=127.0.0.1 port=5433 dbname=pgdblink user=md5_user password=pencil"` (no `password`
    /// for roles without one).
    pub fn conninfo(&self, role: Role) -> String {
        conninfo("127.0.0.1", self.port, role)
    }

    /// A key=value connection string for `role` over the unix socket (`host=<socket dir>`).
    pub fn conninfo_unix(&self, role: Role) -> String {
        conninfo(
            &quote_conninfo(&self.socket_dir.to_string_lossy()),
            self.port,
            role,
        )
    }

    /// The server's major version (`15` for PostgreSQL 15.x; `9` for 9.x).
    pub fn server_version(&self) -> u32 {
        self.version
    }

    /// The directory of the `initdb` and `postgres` binaries used.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The process id of the postmaster (its backends are its children).
    pub fn postmaster_pid(&self) -> u32 {
        self.postmaster.id()
    }

    /// The server log so far (for diagnosing test failures).
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// Stops the server and removes its directory now (what dropping the cluster does).
    pub fn stop(self) {}
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Closing the pipe makes the guardian stop the postmaster; reaping it here lets the guardian
        // see it gone (a zombie child would look alive), then the guardian removes the directory.
        self.guardian.stdin.take();
        let _ = self.postmaster.wait();
        // Dropping `self.guardian` then waits for the removal to finish.
    }
}

/// The guardian process and the write end of its stdin.
struct Guardian {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Drop for Guardian {
    /// Closes the pipe and waits until the guardian has cleaned up (a failed start leaves nothing).
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.wait();
    }
}

impl Guardian {
    fn spawn(dir: &Path) -> Result<Guardian, Error> {
        let spawned = Command::new("/bin/sh")
            .arg("-c")
            .arg(GUARDIAN_SCRIPT)
            .arg("pgdblink-cluster-guardian")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/")
            .process_group(0)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = fs::remove_dir_all(dir);
                return Err(io_error("starting the cleanup process /bin/sh", e));
            }
        };
        let stdin = child.stdin.take();
        Ok(Guardian { child, stdin })
    }

    /// Tells the guardian which process to stop at cleanup (`0`: none).
    fn watch(&mut self, pid: u32) {
        if let Some(stdin) = &mut self.stdin {
            let _ = writeln!(stdin, "{pid}");
        }
    }
}

/// The unprivileged user the server runs as when we are root.
#[derive(Clone, Copy, Debug)]
struct RunAs {
    uid: u32,
    gid: u32,
}

/// What every setup step needs.
struct Setup<'a> {
    bin_dir: &'a Path,
    dir: &'a Path,
    run_as: Option<RunAs>,
}

enum StartError {
    PortTaken,
    Failed(Error),
}

impl Setup<'_> {
    /// Creates the server's socket directory (mode 0700) and its empty log file, owned by the user
    /// the server runs as.
    fn make_socket_dir_and_log(&self, socket_dir: &Path, log_path: &Path) -> Result<(), Error> {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(socket_dir)
            .map_err(|e| io_error(&format!("creating {}", socket_dir.display()), e))?;
        fs::File::create(log_path)
            .map_err(|e| io_error(&format!("creating {}", log_path.display()), e))?;
        if let Some(user) = self.run_as {
            for path in [socket_dir, log_path] {
                std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
                    .map_err(|e| io_error(&format!("chown {}", path.display()), e))?;
            }
        }
        Ok(())
    }

    /// A command for the PostgreSQL program `name`, dropping privileges when needed.
    fn command(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(name));
        cmd.current_dir(self.dir)
            .env("LC_ALL", "C")
            .env_remove("LANG")
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGOPTIONS");
        if let Some(user) = self.run_as {
            cmd.uid(user.uid).gid(user.gid).env("HOME", self.dir);
        }
        cmd
    }

    /// Runs `cmd` to completion with `input` on stdin; fails with its output if it fails.
    fn run(
        &self,
        mut cmd: Command,
        input: Option<&str>,
        guardian: &mut Guardian,
        what: &str,
    ) -> Result<(), Error> {
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| io_error(&format!("running {what} ({:?})", cmd.get_program()), e))?;
        guardian.watch(child.id());
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            // A write error shows up as the command's failure below.
            let _ = stdin.write_all(input.as_bytes());
        }
        let output = child.wait_with_output();
        guardian.watch(0);
        let output = output.map_err(|e| io_error(&format!("waiting for {what}"), e))?;
        if output.status.success() {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Other,
            format!(
                "{what} failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        ))
    }

    /// Starts the postmaster on `port` and waits until it accepts connections.
    fn start_postmaster(
        &self,
        data_dir: &Path,
        log_path: &Path,
        port: u16,
        version: u32,
        guardian: &mut Guardian,
    ) -> Result<Child, StartError> {
        let failed = |msg: String| StartError::Failed(Error::new(ErrorKind::Other, msg));
        let log = fs::OpenOptions::new()
            .append(true)
            .open(log_path)
            .map_err(|e| {
                StartError::Failed(io_error(&format!("opening {}", log_path.display()), e))
            })?;
        let log2 = log
            .try_clone()
            .map_err(|e| StartError::Failed(io_error("duplicating the log file handle", e)))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(data_dir)
            .arg("-c")
            .arg(format!("port={port}"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Not in our process group: a Ctrl-C must not kill it before the guardian shuts it down.
            .process_group(0);
        let mut child = cmd.spawn().map_err(|e| {
            StartError::Failed(io_error(&format!("starting {:?}", cmd.get_program()), e))
        })?;
        guardian.watch(child.id());

        let deadline = Instant::now() + START_TIMEOUT;
        let pid_file = data_dir.join("postmaster.pid");
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        loop {
            match child.try_wait() {
                Ok(None) => {}
                Ok(Some(status)) => {
                    guardian.watch(0);
                    let attempt_log = log_since(log_path, log_start);
                    // Only a port taken meanwhile is worth another try.
                    if attempt_log.contains("Address already in use") {
                        return Err(StartError::PortTaken);
                    }
                    return Err(failed(format!(
                        "PostgreSQL server exited during startup ({status}); server log:\n{}",
                        log_tail(log_path)
                    )));
                }
                Err(e) => {
                    return Err(StartError::Failed(io_error(
                        "waiting for the postmaster",
                        e,
                    )));
                }
            }
            if is_ready(&pid_file, child.id(), version)
                && TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
            {
                return Ok(child);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                guardian.watch(0);
                return Err(failed(format!(
                    "PostgreSQL server did not accept connections on port {port} within {} s; \
                     server log:\n{}",
                    START_TIMEOUT.as_secs(),
                    log_tail(log_path)
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether `postmaster.pid` names `pid` and (PostgreSQL 10 and later) says `ready`, or `standby` (a
/// hot standby accepting read-only connections).
fn is_ready(pid_file: &Path, pid: u32, version: u32) -> bool {
    let Ok(text) = fs::read_to_string(pid_file) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    if lines.first().and_then(|l| l.parse::<u32>().ok()) != Some(pid) {
        return false;
    }
    version < 10 || matches!(lines.get(7), Some(&"ready" | &"standby"))
}

/// The SQL run in single-user mode: one statement per line.
fn setup_sql() -> String {
    let p = PASSWORD;
    [
        "GRANT CREATE ON SCHEMA public TO PUBLIC;".to_owned(),
        format!("CREATE ROLE {} LOGIN;", Role::Trust.user()),
        format!(
            "CREATE ROLE {} LOGIN PASSWORD '{p}';",
            Role::Password.user()
        ),
        "SET password_encryption = 'md5';".to_owned(),
        format!("CREATE ROLE {} LOGIN PASSWORD '{p}';", Role::Md5.user()),
        "SET password_encryption = 'scram-sha-256';".to_owned(),
        format!("CREATE ROLE {} LOGIN PASSWORD '{p}';", Role::Scram.user()),
        format!("CREATE ROLE {} LOGIN;", Role::Rejected.user()),
        format!("CREATE ROLE {} LOGIN;", Role::SslOnly.user()),
        format!("CREATE ROLE {} LOGIN;", Role::NoSslOnly.user()),
        format!("CREATE ROLE {} LOGIN;", Role::Cert.user()),
        format!("CREATE DATABASE {DATABASE};"),
        format!("GRANT ALL ON DATABASE {DATABASE} TO PUBLIC;"),
        String::new(),
    ]
    .join("\n")
}

/// Appends our settings to `postgresql.conf` and replaces `pg_hba.conf`.
fn write_config(
    data_dir: &Path,
    socket_dir: &Path,
    opts: &ClusterOptions,
    tls: Option<&TlsFiles>,
) -> Result<(), Error> {
    let mut conf = String::from("\n# pgdblink throwaway cluster\n");
    let max_connections = opts.max_connections.unwrap_or(600).to_string();
    let socket_dir = socket_dir.to_string_lossy();
    let settings: [(&str, &str); 12] = [
        ("listen_addresses", "127.0.0.1"),
        ("unix_socket_directories", &socket_dir),
        ("max_connections", &max_connections),
        ("shared_buffers", "32MB"),
        ("fsync", "off"),
        ("synchronous_commit", "off"),
        ("full_page_writes", "off"),
        ("password_encryption", "scram-sha-256"),
        ("log_min_messages", "warning"),
        ("logging_collector", "off"),
        ("max_prepared_transactions", "0"),
        ("huge_pages", "off"),
    ];
    let tls_settings = tls.map(|t| {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        [
            ("ssl", "on".to_owned()),
            ("ssl_cert_file", path(&t.server_cert)),
            ("ssl_key_file", path(&t.server_key)),
            ("ssl_ca_file", path(&t.ca_cert)),
            ("ssl_crl_file", path(&t.crl)),
        ]
    });
    let tls_settings = tls_settings.iter().flatten().map(|(k, v)| (*k, v.as_str()));
    let extra = opts
        .extra_conf
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()));
    for (name, value) in settings.into_iter().chain(tls_settings).chain(extra) {
        conf.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
    }
    let conf_path = data_dir.join("postgresql.conf");
    fs::OpenOptions::new()
        .append(true)
        .open(&conf_path)
        .and_then(|mut f| f.write_all(conf.as_bytes()))
        .map_err(|e| io_error(&format!("writing {}", conf_path.display()), e))?;

    let mut hba = String::from("# pgdblink throwaway cluster: one role per method\n");
    for role in Role::ALL {
        let (user, method) = (role.user(), role.hba_method());
        for &kind in role.hba_types() {
            if kind == "local" {
                hba.push_str(&format!("local all {user} {method}\n"));
                continue;
            }
            for net in ["127.0.0.1/32", "::1/128"] {
                hba.push_str(&format!("{kind} all {user} {net} {method}\n"));
            }
        }
    }
    // Streaming replication for the superuser, so that a standby can be made of any cluster
    // (`Cluster::start_standby`): the `all` database above does not match `replication`.
    let sup = Role::Super.user();
    hba.push_str(&format!(
        "local replication {sup} trust\nhost replication {sup} 127.0.0.1/32 trust\n"
    ));
    hba.push_str(
        "local all all reject\nhost all all 127.0.0.1/32 reject\nhost all all ::1/128 reject\n",
    );
    let hba_path = data_dir.join("pg_hba.conf");
    // Rewrite in place: the file keeps its owner.
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&hba_path)
        .and_then(|mut f| f.write_all(hba.as_bytes()))
        .map_err(|e| io_error(&format!("writing {}", hba_path.display()), e))
}

fn conninfo(host: &str, port: u16, role: Role) -> String {
    let mut s = format!(
        "host={host} port={port} dbname={DATABASE} user={}",
        role.user()
    );
    if let Some(password) = role.password() {
        s.push_str(" password=");
        s.push_str(password);
    }
    s
}

/// Quotes a conninfo value if it needs it.
fn quote_conninfo(value: &str) -> String {
    if !value.is_empty() && !value.contains([' ', '\'', '\\', '=']) {
        return value.to_owned();
    }
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Finds the directory holding `initdb` and `postgres`.
fn find_bin_dir() -> Result<PathBuf, Error> {
    let complete =
        |dir: &Path| is_executable(&dir.join("initdb")) && is_executable(&dir.join("postgres"));
    if let Some(dir) = std::env::var_os("PG_BIN_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if complete(&dir) {
            return Ok(dir);
        }
        return Err(Error::new(
            ErrorKind::Other,
            format!(
                "PG_BIN_DIR={} does not contain the PostgreSQL server binaries initdb and postgres",
                dir.display()
            ),
        ));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if !is_executable(&initdb) {
                continue;
            }
            // Resolve symlinks (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb).
            let real = fs::canonicalize(&initdb)
                .ok()
                .and_then(|p| p.parent().map(Path::to_owned));
            for candidate in real.into_iter().chain([dir]) {
                if complete(&candidate) {
                    return Ok(candidate);
                }
            }
        }
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name
                .split('.')
                .map(str::parse)
                .collect::<Result<Vec<u32>, _>>()
                .ok()?;
            let bin = entry.path().join("bin");
            complete(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        Error::new(
            ErrorKind::Other,
            "PostgreSQL server binaries not found: install the postgresql package or put initdb \
             on PATH (or set PG_BIN_DIR to the directory holding initdb and postgres)",
        )
    })
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Our effective uid: from `/proc/self` (owned by the process's euid), else from `/proc/self/status`.
fn euid() -> Option<u32> {
    if let Ok(meta) = fs::metadata("/proc/self") {
        return Some(meta.uid());
    }
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// `None` when not root (the server runs as ourselves), else the unprivileged user to run it as.
fn server_user() -> Result<Option<RunAs>, Error> {
    if euid() != Some(0) {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let lookup = |name: &str| {
        passwd.lines().find_map(|line| {
            let mut fields = line.split(':');
            if fields.next()? != name {
                return None;
            }
            let uid = fields.nth(1)?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some(RunAs { uid, gid })
        })
    };
    lookup("postgres")
        .or_else(|| lookup("nobody"))
        .filter(|u| u.uid != 0)
        .map(Some)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Other,
                "running as root, and /etc/passwd has no unprivileged user (postgres or nobody) to \
                 run the PostgreSQL server as (initdb and postgres refuse to run as root)",
            )
        })
}

/// Creates a fresh, uniquely named 0700 directory owned by the server's user.
fn make_temp_dir(run_as: Option<RunAs>) -> Result<PathBuf, Error> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000_000)
        .unwrap_or(0);
    let name = format!(
        "pgdblink-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut base = std::env::temp_dir();
    // The socket path must fit in sun_path, and another user must be able to reach the directory.
    let socket_len = base
        .join(&name)
        .join("sock/.s.PGSQL.65535.lock")
        .as_os_str()
        .len();
    if socket_len > MAX_SOCKET_PATH || (run_as.is_some() && !world_traversable(&base)) {
        base = PathBuf::from("/tmp");
    }
    let dir = base.join(name);
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| {
            io_error(
                &format!("creating the cluster directory {}", dir.display()),
                e,
            )
        })?;
    if let Some(user) = run_as
        && let Err(e) = std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid))
    {
        let _ = fs::remove_dir_all(&dir);
        return Err(io_error(&format!("chown {}", dir.display()), e));
    }
    Ok(dir)
}

/// Whether every ancestor of `dir` (and `dir`) lets other users through.
fn world_traversable(dir: &Path) -> bool {
    dir.ancestors()
        .all(|d| fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// A free TCP port on 127.0.0.1 (free now; the server start retries if it gets taken).
fn free_port() -> Result<u16, Error> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| io_error("finding a free TCP port on 127.0.0.1", e))
}

/// The log written after byte `start`.
fn log_since(log_path: &Path, start: u64) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut f) = fs::File::open(log_path) {
        let _ = io::Seek::seek(&mut f, io::SeekFrom::Start(start));
        let _ = f.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The last 40 lines of the log.
fn log_tail(log_path: &Path) -> String {
    let log = log_since(log_path, 0);
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn io_error(what: &str, e: io::Error) -> Error {
    Error::new(ErrorKind::Io, format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends a protocol 3.0 StartupMessage for `role` and returns the first reply message's type and
    /// its first Int32 (the authentication code for an `R`).
    fn startup_reply(cluster: &Cluster, role: Role) -> (u8, u32) {
        let mut body = Vec::new();
        body.extend_from_slice(&196_608u32.to_be_bytes());
        for (k, v) in [("user", role.user()), ("database", cluster.database())] {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        msg.extend_from_slice(&body);

        let mut stream = TcpStream::connect(("127.0.0.1", cluster.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(&msg).unwrap();
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).unwrap();
        let code = u32::from_be_bytes(head[5..9].try_into().unwrap());
        (head[0], code)
    }

    /// Sends an SSLRequest and returns the server's one-byte answer (`S` or `N`).
    fn ssl_request(port: u16) -> u8 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut msg = 8u32.to_be_bytes().to_vec();
        msg.extend_from_slice(&80_877_103u32.to_be_bytes());
        stream.write_all(&msg).unwrap();
        let mut answer = [0u8; 1];
        stream.read_exact(&mut answer).unwrap();
        answer[0]
    }

    /// Runs `sql` on a new pgdblink connection; every row's values joined with `|`, rows with `,`.
    fn query(conninfo: &str, sql: &str) -> Result<String, Error> {
        let mut client = crate::driver::Client::connect(conninfo)?;
        let mut out = Vec::new();
        for result in client.query(sql)? {
            if let crate::QueryResult::Rows(rows) = result {
                for r in 0..rows.len() {
                    let values: Vec<&str> = (0..rows.columns().len())
                        .map(|c| rows.get(r, c).unwrap_or("NULL"))
                        .collect();
                    out.push(values.join("|"));
                }
            }
        }
        Ok(out.join(","))
    }

    fn accepts(port: u16) -> bool {
        TcpStream::connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            Duration::from_secs(2),
        )
        .is_ok()
    }

    #[test]
    fn start_then_stop_removes_everything() {
        let mut cluster = Cluster::start_with(ClusterOptions {
            max_connections: Some(20),
            extra_conf: vec![("application_name".into(), "it's".into())],
            ..ClusterOptions::default()
        })
        .unwrap();
        let dir = cluster.dir.clone();
        let port = cluster.port();
        assert!(cluster.data_dir().join("postmaster.pid").is_file());
        assert!(
            cluster
                .socket_dir()
                .join(format!(".s.PGSQL.{port}"))
                .exists()
        );
        assert!(accepts(port));
        assert!(
            cluster.server_version() >= 10,
            "{}",
            cluster.server_version()
        );
        assert!(cluster.bin_dir().join("postgres").is_file());
        assert_eq!(startup_reply(&cluster, Role::Trust), (b'R', 0));
        assert!(cluster.tls().is_none());
        let err = cluster.set_server_cert(ServerCert::NameOnly).unwrap_err();
        assert!(err.to_string().contains("without TLS"), "{err}");
        cluster.stop();
        assert!(!dir.exists(), "{} still exists", dir.display());
        assert!(!accepts(port));
    }

    #[test]
    fn roles_authenticate_as_configured() {
        let cluster = Cluster::shared().unwrap();
        assert!(std::ptr::eq(cluster, Cluster::shared().unwrap()));
        assert_eq!(startup_reply(cluster, Role::Super), (b'R', 0));
        assert_eq!(startup_reply(cluster, Role::Trust), (b'R', 0));
        assert_eq!(startup_reply(cluster, Role::Password), (b'R', 3));
        assert_eq!(startup_reply(cluster, Role::Md5), (b'R', 5));
        assert_eq!(startup_reply(cluster, Role::Scram), (b'R', 10));
        assert_eq!(startup_reply(cluster, Role::Rejected).0, b'E');
        // Without TLS the hostssl roles are turned away, the hostnossl one let in.
        assert_eq!(startup_reply(cluster, Role::SslOnly).0, b'E');
        assert_eq!(startup_reply(cluster, Role::Cert).0, b'E');
        assert_eq!(startup_reply(cluster, Role::NoSslOnly), (b'R', 0));
        assert_eq!(ssl_request(cluster.port()), b'N');
        // The only pg_hba.conf lines the server finds fault with are the hostssl ones (they cannot
        // match with ssl = off; the server starts all the same).
        assert_eq!(
            query(
                &cluster.conninfo_unix(Role::Super),
                "SELECT string_agg(DISTINCT error, '; ') || ' x' || count(*) \
                 FROM pg_hba_file_rules WHERE error IS NOT NULL"
            )
            .unwrap(),
            "hostssl record cannot match because SSL is disabled x4"
        );
        assert_eq!(
            cluster.conninfo_tls(Role::Trust, "disable"),
            format!(
                "host=localhost hostaddr=127.0.0.1 port={} dbname=pgdblink user=trust_user \
                 sslmode=disable",
                cluster.port()
            )
        );
        assert!(
            cluster
                .socket_dir()
                .join(format!(".s.PGSQL.{}", cluster.port()))
                .exists()
        );
        assert_eq!(
            cluster.conninfo(Role::Md5),
            format!(
                "host=127.0.0.1 port={} dbname=pgdblink user=md5_user password=pencil",
                cluster.port()
            )
        );
        assert!(
            cluster
                .conninfo_unix(Role::Trust)
                .ends_with("dbname=pgdblink user=trust_user")
        );
    }

    #[test]
    fn tls_cluster_has_its_files_and_hba_lines() {
        let cluster = Cluster::shared_tls().unwrap();
        assert!(std::ptr::eq(cluster, Cluster::shared_tls().unwrap()));
        let tls = cluster.tls().expect("TLS files");
        assert_eq!(ssl_request(cluster.port()), b'S');

        // The server's key is 0600 and the server's (like its data directory); client keys 0600
        // and ours; certificates and CRLs PEM.
        let meta = |p: &Path| fs::metadata(p).unwrap();
        let mode = |p: &Path| meta(p).permissions().mode() & 0o777;
        let server_uid = meta(cluster.data_dir()).uid();
        for which in ServerCert::ALL {
            let key = tls.server_key_file(which);
            assert_eq!((mode(&key), meta(&key).uid()), (0o600, server_uid));
            let cert = fs::read_to_string(tls.server_cert_file(which)).unwrap();
            assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        }
        assert_eq!(
            (mode(&tls.server_key), meta(&tls.server_key).uid()),
            (0o600, server_uid)
        );
        assert_eq!(
            fs::read(&tls.server_cert).unwrap(),
            fs::read(tls.server_cert_file(ServerCert::Full)).unwrap()
        );
        let me = euid().unwrap();
        for key in [
            &tls.client_key,
            &tls.revoked_client_key,
            &tls.other_ca_client_key,
        ] {
            assert_eq!(
                (mode(key), meta(key).uid()),
                (0o600, me),
                "{}",
                key.display()
            );
        }
        for cert in [
            &tls.ca_cert,
            &tls.other_ca_cert,
            &tls.sha384_ca_cert,
            &tls.client_cert,
            &tls.revoked_client_cert,
            &tls.other_ca_client_cert,
        ] {
            let pem = fs::read_to_string(cert).unwrap();
            assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        }
        for crl in [&tls.crl, &tls.other_ca_crl] {
            let pem = fs::read_to_string(crl).unwrap();
            assert!(pem.starts_with("-----BEGIN X509 CRL-----"), "{pem}");
        }
        assert_ne!(tls.revoked_server_serial(), tls.revoked_client_serial());

        // write_client_key: the key, with exactly the mode asked for.
        let copy = tls.dir.join(format!("copy-{}.key", std::process::id()));
        for wanted in [0o644, 0o600, 0o640] {
            tls.write_client_key(&copy, wanted).unwrap();
            assert_eq!(mode(&copy), wanted);
            assert_eq!(fs::read(&copy).unwrap(), fs::read(&tls.client_key).unwrap());
        }
        fs::remove_file(&copy).unwrap();

        // Every pg_hba.conf line loaded; TLS is on with the generated files.
        let sup = cluster.conninfo_unix(Role::Super);
        let rules = "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL";
        assert_eq!(query(&sup, rules).unwrap(), "0");
        assert_eq!(
            query(
                &sup,
                "SELECT current_setting('ssl'), current_setting('ssl_ca_file') <> '', \
                 current_setting('ssl_crl_file') <> ''"
            )
            .unwrap(),
            "on|t|t"
        );
        let hba = query(
            &sup,
            "SELECT string_agg(DISTINCT type || ' ' || array_to_string(user_name, ',') || ' ' \
             || auth_method, '; ') FROM pg_hba_file_rules WHERE user_name && \
             '{ssl_only,nossl_only,cert_user}'",
        )
        .unwrap();
        assert_eq!(
            hba,
            "hostnossl nossl_only trust; hostssl cert_user cert; hostssl ssl_only trust"
        );

        // Plaintext over TCP: only the hostnossl role and the `host` roles get in.
        let plain = |role| cluster.conninfo_tls(role, "disable");
        assert_eq!(
            query(&plain(Role::NoSslOnly), "SELECT current_user").unwrap(),
            "nossl_only"
        );
        assert_eq!(
            query(&plain(Role::Scram), "SELECT current_user").unwrap(),
            "scram_user"
        );
        for role in [Role::SslOnly, Role::Cert] {
            let err = query(&plain(role), "SELECT 1").unwrap_err().to_string();
            assert!(
                err.contains(&format!(
                    "pg_hba.conf rejects connection for host \"127.0.0.1\", user \"{}\", \
                     database \"pgdblink\", no encryption",
                    role.user()
                )),
                "{err}"
            );
        }
        let ca = quote_conninfo(&tls.ca_cert.to_string_lossy());
        let cert = quote_conninfo(&tls.client_cert.to_string_lossy());
        let key = quote_conninfo(&tls.client_key.to_string_lossy());
        assert_eq!(
            cluster.conninfo_tls(Role::Cert, "verify-full"),
            format!(
                "host=localhost hostaddr=127.0.0.1 port={} dbname=pgdblink user=cert_user \
                 sslmode=verify-full sslrootcert={ca} sslcert={cert} sslkey={key}",
                cluster.port()
            )
        );
        assert!(
            cluster
                .conninfo_tls(Role::Scram, "require")
                .ends_with(&format!("password=pencil sslmode=require sslrootcert={ca}"))
        );
    }

    #[test]
    fn set_server_cert_installs_and_reloads() {
        let mut cluster = Cluster::start_with(ClusterOptions {
            tls: true,
            max_connections: Some(20),
            ..ClusterOptions::default()
        })
        .unwrap();
        let dir = cluster.dir.clone();
        let before = cluster.conf_load_time().unwrap();
        for which in [ServerCert::NameOnly, ServerCert::Revoked, ServerCert::Full] {
            cluster.set_server_cert(which).unwrap();
            let tls = cluster.tls().unwrap();
            assert_eq!(
                fs::read(&tls.server_cert).unwrap(),
                fs::read(tls.server_cert_file(which)).unwrap()
            );
            assert_eq!(
                fs::read(&tls.server_key).unwrap(),
                fs::read(tls.server_key_file(which)).unwrap()
            );
            let key = fs::metadata(&tls.server_key).unwrap();
            assert_eq!(key.permissions().mode() & 0o777, 0o600);
            assert_eq!(key.uid(), fs::metadata(cluster.data_dir()).unwrap().uid());
            assert_eq!(
                fs::metadata(&tls.server_cert).unwrap().permissions().mode() & 0o777,
                0o644
            );
            assert_eq!(ssl_request(cluster.port()), b'S');
        }
        assert_ne!(cluster.conf_load_time().unwrap(), before);
        cluster.stop();
        assert!(!dir.exists(), "{} still exists", dir.display());
    }

    #[test]
    fn panic_drops_and_removes_the_cluster() {
        let (tx, rx) = std::sync::mpsc::channel();
        let result = std::panic::catch_unwind(move || {
            let cluster = Cluster::start().unwrap();
            tx.send((cluster.dir.clone(), cluster.port())).unwrap();
            panic!("test panic with a running cluster");
        });
        assert!(result.is_err());
        let (dir, port) = rx.recv().unwrap();
        assert!(!dir.exists(), "{} still exists", dir.display());
        assert!(!accepts(port));
    }

    #[test]
    fn failed_start_reports_the_server_log() {
        let err = Cluster::start_with(ClusterOptions {
            max_connections: None,
            // TEST-NET-1: not an address of this machine, so the postmaster cannot listen.
            extra_conf: vec![("listen_addresses".into(), "192.0.2.1".into())],
            ..ClusterOptions::default()
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("exited during startup"), "{text}");
        assert!(text.contains("192.0.2.1"), "{text}");
    }

    /// Not a test by itself: the child process of `guardian_cleans_up_after_sigkill`.
    #[test]
    #[ignore = "helper run by guardian_cleans_up_after_sigkill"]
    fn sigkill_helper() {
        if std::env::var_os("PGDBLINK_CLUSTER_SIGKILL_HELPER").is_none() {
            return;
        }
        let cluster = Cluster::start().unwrap();
        println!("CLUSTER {} {}", cluster.port(), cluster.dir.display());
        io::stdout().flush().unwrap();
        std::thread::sleep(Duration::from_secs(60));
    }

    #[test]
    fn guardian_cleans_up_after_sigkill() {
        use std::io::BufRead;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "cluster::tests::sigkill_helper",
                "--ignored",
                "--nocapture",
            ])
            .env("PGDBLINK_CLUSTER_SIGKILL_HELPER", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let line = io::BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("CLUSTER "));
        child.kill().unwrap();
        child.wait().unwrap();
        let line = line.expect("the helper printed no CLUSTER line");
        let mut parts = line.splitn(3, ' ').skip(1);
        let port: u16 = parts.next().unwrap().parse().unwrap();
        let dir = PathBuf::from(parts.next().unwrap());
        let deadline = Instant::now() + Duration::from_secs(20);
        while dir.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!dir.exists(), "{} still exists", dir.display());
        assert!(!accepts(port));
    }
}
