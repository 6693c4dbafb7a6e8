use super::*;

fn query() -> Request {
    Request::Query(SimpleQuery::new(None, None))
}

fn execute(ends: bool) -> Request {
    Request::Execute {
        stage: Stage::Execute,
        q: SimpleQuery::new(None, None),
        ends,
    }
}

/// A request that does not end a command of its own.
fn prepare(ends: bool) -> Request {
    Request::Parse {
        prepare: true,
        ends,
    }
}

fn drain(outbox: &mut Outbox) -> Vec<String> {
    std::iter::from_fn(|| outbox.pop())
        .map(|o| match o {
            Output::End => "end".to_owned(),
            Output::Result(Ok(r)) => format!("{r:?}"),
            Output::Result(Err(_)) => "err".to_owned(),
        })
        .collect()
}

#[test]
fn a_simple_query_is_its_own_sync_point() {
    let mut requests = Requests::default();
    let mut outbox = Outbox::default();
    requests.push(query(), &mut outbox);
    requests.push(query(), &mut outbox);
    assert_eq!(requests.skip_to_sync(&mut outbox), 0);
    assert_eq!(requests.len(), 2);
    assert_eq!(outbox.len(), 0);
}

/// libpq's pipeline rule: the failed command ends, every later one up to the Sync is aborted.
#[test]
fn skipped_commands_are_aborted_up_to_the_sync() {
    let mut requests = Requests::default();
    let mut outbox = Outbox::default();
    for _ in 0..2 {
        requests.push(prepare(false), &mut outbox);
        requests.push(execute(true), &mut outbox);
    }
    let sync = Request::Sync {
        pipeline: true,
        silent: false,
    };
    requests.push(sync, &mut outbox);
    requests.push(execute(true), &mut outbox);
    assert_eq!(requests.skip_to_sync(&mut outbox), 4);
    assert_eq!(drain(&mut outbox), ["end", "PipelineAborted", "end"]);
    assert_eq!(requests.len(), 2);
    assert!(!requests.is_skipping());
}

/// With no Sync queued yet, the commands queued after the error are skipped as they come.
#[test]
fn without_a_sync_later_commands_are_aborted_on_the_spot() {
    let mut requests = Requests::default();
    let mut outbox = Outbox::default();
    requests.push(execute(true), &mut outbox);
    assert_eq!(requests.skip_to_sync(&mut outbox), 1);
    assert!(requests.is_skipping());
    requests.push(prepare(false), &mut outbox);
    requests.push(execute(true), &mut outbox);
    assert!(requests.is_empty());
    assert_eq!(drain(&mut outbox), ["end", "PipelineAborted", "end"]);
    let sync = Request::Sync {
        pipeline: true,
        silent: false,
    };
    requests.push(sync, &mut outbox);
    assert!(!requests.is_skipping());
    requests.push(execute(true), &mut outbox);
    assert_eq!(requests.len(), 2);
}
