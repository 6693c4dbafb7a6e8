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
/// The home directory is `$HOME` if set and non-empty, else the password-database entry
/// (`getpwuid_r`) of the process's effective uid. The user name is that entry's name (as libpq does
/// with `getpwuid`), falling back to `$USER` and then `$LOGNAME` when the uid has no entry. On
/// platforms without a password database (not unix) both lookups find nothing: no home directory
/// (so no default `.pgpass`), and a user name only from `$USER` or `$LOGNAME`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemEnvironment;

impl Environment for SystemEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var_os(name).and_then(|v| v.into_string().ok())
    }

    fn home_dir(&self) -> Option<PathBuf> {
        match self.var("HOME") {
            Some(home) if !home.is_empty() => Some(PathBuf::from(home)),
            _ => os::passwd_entry()
                .map(|(_, home)| home)
                .filter(|home| !home.as_os_str().is_empty()),
        }
    }

    fn os_user(&self) -> Option<String> {
        os::passwd_entry().map(|(name, _)| name).or_else(|| {
            ["USER", "LOGNAME"]
                .iter()
                .filter_map(|v| self.var(v))
                .find(|v| !v.is_empty())
        })
    }
}

/// The operating system's user database: the only part of `conninfo` that asks the OS.
mod os {
    use std::path::PathBuf;

    /// `(name, home)` of the password-database entry of the process's effective uid (libpq's
    /// `getpwuid(geteuid())`), if it has one with a non-empty name.
    #[cfg(all(unix, not(target_os = "redox")))]
    pub(super) fn passwd_entry() -> Option<(String, PathBuf)> {
        use nix::unistd::{User, geteuid};
        let user = User::from_uid(geteuid()).ok()??;
        (!user.name.is_empty()).then_some((user.name, user.dir))
    }

    /// No password database here: the user is unknown.
    #[cfg(not(all(unix, not(target_os = "redox"))))]
    pub(super) fn passwd_entry() -> Option<(String, PathBuf)> {
        None
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

#[cfg(all(test, unix, not(target_os = "redox")))]
mod tests {
    use std::path::PathBuf;
    use std::process::Command;

    fn run(program: &str, args: &[&str]) -> String {
        let out = Command::new(program).args(args).output().expect(program);
        assert!(out.status.success(), "{program} {args:?}: {out:?}");
        String::from_utf8(out.stdout)
            .expect("UTF-8")
            .trim()
            .to_owned()
    }

    /// The OS lookup finds the effective uid's entry, the one `id -un` and `getent passwd` show.
    #[test]
    fn passwd_entry_is_the_effective_users() {
        let (name, home) = super::os::passwd_entry().expect("the effective uid has an entry");
        assert_eq!(name, run("id", &["-un"]));
        let entry = run("getent", &["passwd", &run("id", &["-u"])]);
        let expected_home = entry.split(':').nth(5).expect("a home field");
        assert_eq!(home, PathBuf::from(expected_home));
    }
}
