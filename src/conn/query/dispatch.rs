//! Which response the front request of the queue is owed, message by message.

use super::*;

/// What the front request made of a message.
pub(super) enum FrontStep {
    /// A step for the connection to apply.
    Step(Step),
    /// A Sync's ReadyForQuery, already popped and reported: the new transaction status.
    Synced(TransactionStatus),
}

/// The front request handles `msg` (the Describe of an Execute hands its row description to the
/// Execute behind it).
pub(super) fn front_step(
    queue: &mut VecDeque<Request>,
    msg: BackendMessage<'_>,
    sink: &mut Sink<'_>,
) -> FrontStep {
    let Some(front) = queue.front_mut() else {
        return FrontStep::Step(Step::Continue);
    };
    let step = match front {
        Request::Query(q) => q.handle(msg, sink),
        Request::Execute { stage, q, .. } => match (*stage, msg) {
            (Stage::Parse, BackendMessage::ParseComplete) => {
                *stage = Stage::Bind;
                Step::Continue
            }
            (Stage::Bind, BackendMessage::BindComplete) => {
                *stage = Stage::Describe;
                Step::Continue
            }
            (Stage::Describe, BackendMessage::NoData) => {
                *stage = Stage::Execute;
                Step::Continue
            }
            (Stage::Describe, BackendMessage::ParameterDescription(_)) => Step::Continue,
            (Stage::Describe, BackendMessage::RowDescription(desc)) => {
                let step = q.describe(&desc, sink);
                *stage = Stage::Execute;
                step
            }
            (Stage::Parse | Stage::Bind | Stage::Describe, msg) => unexpected(&msg),
            (Stage::Execute, BackendMessage::CommandComplete { tag }) => {
                q.complete(tag, sink);
                Step::Done
            }
            (Stage::Execute, BackendMessage::EmptyQueryResponse) => {
                q.deliver(sink.outbox, Ok(QueryResult::EmptyQuery));
                Step::Done
            }
            (
                Stage::Execute,
                msg @ (BackendMessage::ReadyForQuery(_) | BackendMessage::PortalSuspended),
            ) => unexpected(&msg),
            (Stage::Execute, msg) => q.handle(msg, sink),
        },
        Request::Parse { prepare, .. } => match msg {
            BackendMessage::ParseComplete => {
                if *prepare {
                    sink.outbox
                        .push(Output::Result(Ok(QueryResult::Command(String::new()))));
                }
                Step::Done
            }
            msg => unexpected(&msg),
        },
        Request::Sync { pipeline, silent } => match msg {
            BackendMessage::ReadyForQuery(status) => {
                let output = synced_output(*pipeline, *silent);
                queue.pop_front();
                if let Some(output) = output {
                    sink.outbox.push(output);
                }
                return FrontStep::Synced(status);
            }
            msg => unexpected(&msg),
        },
    };
    FrontStep::Step(step)
}

/// What a Sync's ReadyForQuery gives the caller: nothing for a silent one (one pgdblink sent
/// itself), a pipeline sync point in pipeline mode, else the end marker.
#[inline]
pub(super) fn synced_output(pipeline: bool, silent: bool) -> Option<Output> {
    match (pipeline, silent) {
        (_, true) => None,
        (true, false) => Some(Output::Result(Ok(QueryResult::PipelineSync))),
        (false, false) => Some(Output::End),
    }
}

/// A message the front request does not expect.
fn unexpected(msg: &BackendMessage<'_>) -> Step {
    Step::Violation(format!(
        "unexpected response from server; first received character was \"{}\"",
        protocol::printable(msg.tag())
    ))
}
