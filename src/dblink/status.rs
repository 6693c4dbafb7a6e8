//! The status of a named connection: libpq's `PQhost`, `PQport`, `PQbackendPID`,
//! `PQparameterStatus`, `PQtransactionStatus`. On a name still connecting they describe the
//! attempt so far, without waiting.

use super::{Dblink, Pending, not_available};
use crate::driver::{ConnId, TransactionStatus};
use crate::error::Error;

impl Dblink {
    /// The open connection `name`, `None` for a name still connecting (or whose failure was not
    /// collected yet), without waiting.
    pub(super) fn status_id(&self, name: &str) -> Result<Option<ConnId>, Error> {
        match self.names.get(name) {
            Some(e) => Ok(Some(e.id)),
            None if self.connecting.contains_key(name) => Ok(None),
            None => Err(not_available(name)),
        }
    }

    /// The host and port of `name`: where it is connected, or what its attempt is trying.
    fn origin(&self, name: &str) -> Result<(String, u16), Error> {
        if let Some(id) = self.status_id(name)? {
            let host = self.reactor.host(id).unwrap_or_default().to_owned();
            return Ok((host, self.reactor.port(id).unwrap_or(0)));
        }
        Ok(match self.connecting.get(name) {
            Some(Pending::Running(a)) => self.reactor.connect_target(*a).unwrap_or_default(),
            _ => (String::new(), 0),
        })
    }

    /// libpq's `PQhost`: the host connected to, as the connection string gave it (a host name,
    /// else the `hostaddr`, or a unix socket directory); of several hosts, the one in use. While
    /// connecting, the host being tried (`""` before any).
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "host=db1.example,db2.example target_session_attrs=read-write dbname=app")?;
    /// println!("primary: {}:{}", db.host("c")?, db.port("c")?);
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn host(&self, name: &str) -> Result<String, Error> {
        Ok(self.origin(name)?.0)
    }

    /// libpq's `PQport`: the port of the server in use (while connecting, the one being tried;
    /// 0 before any).
    pub fn port(&self, name: &str) -> Result<u16, Error> {
        Ok(self.origin(name)?.1)
    }

    /// libpq's `PQbackendPID`: the server process serving the connection; 0 while connecting.
    pub fn backend_pid(&self, name: &str) -> Result<u32, Error> {
        let Some(id) = self.status_id(name)? else {
            return Ok(0);
        };
        let conn = self.reactor.get(id).expect("registered connection").conn();
        Ok(conn.backend_key().map_or(0, |(pid, _)| pid))
    }

    /// libpq's `PQparameterStatus`: a setting the server reports (`server_version`,
    /// `server_encoding`, `in_hot_standby`, `TimeZone`, ...), as last reported; `None` for one
    /// never reported, and while connecting.
    ///
    /// ```no_run
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// assert!(db.parameter_status("c", "server_version")?.is_some());
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn parameter_status(&self, name: &str, parameter: &str) -> Result<Option<String>, Error> {
        let Some(id) = self.status_id(name)? else {
            return Ok(None);
        };
        let conn = self.reactor.get(id).expect("registered connection").conn();
        Ok(conn.parameter(parameter).map(str::to_owned))
    }

    /// libpq's `PQtransactionStatus`: `Active` while a command is in progress (results or the end
    /// marker not yet taken), else `Idle`, `InTransaction` or `InError` as the server last said;
    /// `Unknown` for a broken connection and while connecting.
    ///
    /// ```no_run
    /// use pgdblink::TransactionStatus;
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// db.exec("c", "BEGIN")?;
    /// assert_eq!(db.transaction_status("c")?, TransactionStatus::InTransaction);
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn transaction_status(&self, name: &str) -> Result<TransactionStatus, Error> {
        let Some(id) = self.status_id(name)? else {
            return Ok(TransactionStatus::Unknown);
        };
        let conn = self.reactor.get(id).expect("registered connection").conn();
        Ok(TransactionStatus::of(conn))
    }
}
