//! Where defaults come from: the process environment, or a map for hermetic tests.

use std::collections::HashMap;
use std::path::PathBuf;

/// The source of `PG*` variables, the home directory (for `~/.pgpass`) and the OS user name (the
/// default `user`), consulted by [`Config::resolve`](super::Config::resolve).
pub trait Environment {
    /// The value of the environment variable `name`, if set (an empty value is `Some("")`).
    fn var(&self, name: &str) -> Option<String>;
    /// The user's home directory.
    fn home_dir(&self) -> Option<PathBuf>;
    /// The name of the operating-system user running the process.
    fn os_user(&self) -> Option<String>;
}

/// The real process environment: `std::env`, `$HOME`, and the user name of the effective uid.
///
/// The home directory is `$HOME` if set and non-empty, else the `/etc/passwd` entry of the process's
/// uid. The user name is the `/etc/passwd` entry of the uid (as libpq does with `getpwuid`), falling
/// back to `$USER` and then `$LOGNAME` when the uid has no entry.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemEnvironment;

impl SystemEnvironment {
    /// The uid owning `/proc/self`, i.e. the effective uid of this process.
    fn uid() -> Option<u32> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    }

    /// `(name, home)` of the `/etc/passwd` entry for the process's uid.
    fn passwd_entry() -> Option<(String, String)> {
        let uid = Self::uid()?;
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let _password = fields.next()?;
            let entry_uid: u32 = fields.next()?.parse().ok()?;
            let _gid = fields.next()?;
            let _gecos = fields.next()?;
            let home = fields.next()?;
            (entry_uid == uid && !name.is_empty()).then(|| (name.to_owned(), home.to_owned()))
        })
    }
}

impl Environment for SystemEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var_os(name).and_then(|v| v.into_string().ok())
    }

    fn home_dir(&self) -> Option<PathBuf> {
        match self.var("HOME") {
            Some(home) if !home.is_empty() => Some(PathBuf::from(home)),
            _ => Self::passwd_entry()
                .map(|(_, home)| PathBuf::from(home))
                .filter(|home| !home.as_os_str().is_empty()),
        }
    }

    fn os_user(&self) -> Option<String> {
        Self::passwd_entry().map(|(name, _)| name).or_else(|| {
            ["USER", "LOGNAME"]
                .iter()
                .filter_map(|v| self.var(v))
                .find(|v| !v.is_empty())
        })
    }
}

/// A fixed environment for hermetic tests and embedding: nothing is read from the process.
///
/// ```
/// use pgdblink::conninfo::{Environment, MapEnvironment};
///
/// let env = MapEnvironment::default().with_var("PGPORT", "6543").with_user("alice");
/// assert_eq!(env.var("PGPORT").as_deref(), Some("6543"));
/// assert_eq!(env.var("PGHOST"), None);
/// assert_eq!(env.os_user().as_deref(), Some("alice"));
/// assert_eq!(env.home_dir(), None);
/// ```
#[derive(Clone, Debug, Default)]
pub struct MapEnvironment {
    vars: HashMap<String, String>,
    home: Option<PathBuf>,
    user: Option<String>,
}

impl MapEnvironment {
    /// An empty environment: no variables, no home directory, no user name.
    pub fn new() -> MapEnvironment {
        MapEnvironment::default()
    }

    /// Sets the variable `name` to `value`.
    pub fn with_var(mut self, name: impl Into<String>, value: impl Into<String>) -> MapEnvironment {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// Sets the home directory.
    pub fn with_home(mut self, home: impl Into<PathBuf>) -> MapEnvironment {
        self.home = Some(home.into());
        self
    }

    /// Sets the OS user name.
    pub fn with_user(mut self, user: impl Into<String>) -> MapEnvironment {
        self.user = Some(user.into());
        self
    }
}

impl Environment for MapEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn home_dir(&self) -> Option<PathBuf> {
        self.home.clone()
    }

    fn os_user(&self) -> Option<String> {
        self.user.clone()
    }
}
