//! Queries with a deadline: [`Dblink::query_timeout`]. When the deadline passes the statement is
//! cancelled (a CancelRequest, as `cancel_query` sends) and its results drained, so the connection
//! stays usable, and the error is the server's 57014; a server that does not answer the cancel within
//! the registry's cancel timeout leaves the connection busy, with a clear error.

use std::time::{Duration, Instant};

use super::Dblink;
use crate::conn::{PollResult, QueryResult};
use crate::driver::ConnId;
use crate::error::{Error, ErrorKind};

/// The text of a query whose cancel was not answered in time.
pub(crate) const CANCEL_UNANSWERED_TEXT: &str = "timeout expired: the statement was cancelled but the \
     server has not ended it yet; its results are still to be taken with get_result";

impl Dblink {
    /// Like [`query`](Self::query) with a deadline: when `timeout` passes before the last result,
    /// a cancel request is sent (the server then ends the statement with 57014 `canceling
    /// statement due to user request`, which is returned) and the results are drained, so the
    /// connection is usable afterwards. Should the server not end the statement within the cancel
    /// timeout ([`set_cancel_timeout`](Self::set_cancel_timeout)) either, the call returns an error
    /// (`timeout expired: the statement was cancelled but the server has not ended it yet; ...`)
    /// and the connection stays busy: its results come later through
    /// [`get_result`](Self::get_result) and [`wait`](Self::wait) (a temporary connection is
    /// closed). `None` waits as long as it takes, exactly as [`query`](Self::query).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let mut db = pgdblink::Dblink::new();
    /// db.connect("c", "dbname=postgres")?;
    /// let slow = db.query_timeout("c", "SELECT pg_sleep(60)", Some(Duration::from_millis(200)));
    /// assert_eq!(slow.unwrap_err().code(), Some("57014"));
    /// db.query("c", "SELECT 1")?; // usable again
    /// # Ok::<(), pgdblink::Error>(())
    /// ```
    pub fn query_timeout(
        &mut self,
        target: &str,
        sql: &str,
        timeout: Option<Duration>,
    ) -> Result<QueryResult, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        self.with_target(target, |db, id| db.run_until(id, sql, deadline))
    }

    /// Sends `sql` and takes every result up to the end marker before `deadline`, cancelling the
    /// statement when it passes; the last result, or the first error once everything is drained.
    fn run_until(
        &mut self,
        id: ConnId,
        sql: &str,
        mut deadline: Option<Instant>,
    ) -> Result<QueryResult, Error> {
        self.reactor.command(id, |c| {
            c.check_not_pipelined()?;
            c.send_query(sql)
        })?;
        let mut last = None;
        let mut first_error = None;
        let mut cancelled = false;
        loop {
            match self.reactor.poll_result(id) {
                PollResult::Ready(Ok(r)) => last = Some(r),
                PollResult::Ready(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                PollResult::Done => break,
                PollResult::Pending if self.reactor.progress_now(id) => {}
                PollResult::Pending => {
                    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                    if left != Some(Duration::ZERO) {
                        self.reactor.dispatch(left)?;
                        continue;
                    }
                    if cancelled {
                        // The results still come: get_result and wait take them.
                        self.set_in_flight(id, true);
                        return Err(Error::new(ErrorKind::Other, CANCEL_UNANSWERED_TEXT));
                    }
                    cancelled = true;
                    let cancel_timeout = self.cancel_timeout;
                    self.reactor.cancel(id, cancel_timeout)?;
                    deadline = Some(Instant::now() + cancel_timeout);
                }
            }
        }
        super::last_result(last, first_error)
    }
}
