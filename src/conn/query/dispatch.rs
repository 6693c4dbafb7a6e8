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
        Request::Execute { q, .. } => match msg {
            BackendMessage::CommandComplete { tag } => {
                q.complete(tag, sink);
                Step::Done
            }
            BackendMessage::EmptyQueryResponse => {
                q.deliver(sink.outbox, Ok(QueryResult::EmptyQuery));
                Step::Done
            }
            BackendMessage::ReadyForQuery(_) | BackendMessage::PortalSuspended => unexpected(&msg),
            msg => q.handle(msg, sink),
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
        Request::Bind => match msg {
            BackendMessage::BindComplete => Step::Done,
            msg => unexpected(&msg),
        },
        Request::Describe => match msg {
            BackendMessage::NoData => Step::Done,
            BackendMessage::ParameterDescription(_) => Step::Continue,
            BackendMessage::RowDescription(desc) => match queue.get_mut(1) {
                Some(Request::Execute { q, .. }) => match q.describe(&desc, sink) {
                    Step::Continue => Step::Done,
                    other => other,
                },
                _ => Step::Done,
            },
            msg => unexpected(&msg),
        },
        Request::Sync { pipeline, silent } => match msg {
            BackendMessage::ReadyForQuery(status) => {
                let (pipeline, silent) = (*pipeline, *silent);
                queue.pop_front();
                if silent {
                } else if pipeline {
                    sink.outbox
                        .push(Output::Result(Ok(QueryResult::PipelineSync)));
                } else {
                    sink.outbox.push(Output::End);
                }
                return FrontStep::Synced(status);
            }
            msg => unexpected(&msg),
        },
    };
    FrontStep::Step(step)
}

/// A message the front request does not expect.
fn unexpected(msg: &BackendMessage<'_>) -> Step {
    Step::Violation(format!(
        "unexpected response from server; first received character was \"{}\"",
        protocol::printable(msg.tag())
    ))
}
