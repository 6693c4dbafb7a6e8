//! The fast path of `process` (`query/fast.rs`) against the general path: every exchange, valid or
//! not, gives the same results, end markers, state, transaction status, output and fatal error
//! whichever path takes its messages, and however the input is split.

use super::*;

/// What a connection shows after an exchange.
fn observe(conn: &mut Connection) -> String {
    let mut seen = Vec::new();
    for _ in 0..64 {
        // Input a budget holds back shows in the status before each result is taken.
        seen.push(format!("tx {:?}", conn.transaction_status()));
        match conn.poll_result() {
            PollResult::Ready(Ok(r)) => seen.push(format!("{r:?}")),
            PollResult::Ready(Err(e)) => seen.push(format!("error {}", e.libpq_text())),
            PollResult::Done => {
                seen.push("done".into());
                if !conn.is_active() {
                    break;
                }
            }
            PollResult::Pending => {
                seen.push("pending".into());
                break;
            }
        }
    }
    format!(
        "{seen:?} state={:?} tx={:?} out={:?} fatal={:?}",
        conn.state(),
        conn.transaction_status(),
        conn.pending_output(),
        conn.fatal_error().map(Error::libpq_text),
    )
}

/// Runs `send` then feeds `input` in pieces of `step` bytes, through the fast path or not.
fn run(slow: bool, send: &dyn Fn(&mut Connection), input: &[u8], step: usize) -> String {
    let mut conn = ready_connection(&[]);
    conn.slow_only = slow;
    send(&mut conn);
    conn.consume_output(conn.pending_output().len());
    for piece in input.chunks(step) {
        conn.handle_input(piece);
    }
    observe(&mut conn)
}

fn same_both_ways(name: &str, send: &dyn Fn(&mut Connection), input: &[u8]) {
    let expected = run(true, send, input, input.len().max(1));
    for step in [input.len().max(1), 1, 3, 7] {
        assert_eq!(
            run(false, send, input, step),
            expected,
            "{name}, step {step}"
        );
    }
}

fn simple(conn: &mut Connection) {
    conn.queue_query_unchecked("SELECT a", None);
    conn.queue_query_unchecked("SELECT b", None);
}

fn pipelined(conn: &mut Connection) {
    conn.enter_pipeline_mode().unwrap();
    conn.send_query_params("SELECT $1", &[Some("1")]).unwrap();
    conn.send_prepare("p", "SELECT 1").unwrap();
    conn.send_query_params("SELECT $1", &[Some("2")]).unwrap();
    conn.pipeline_sync().unwrap();
}

fn extended(conn: &mut Connection) {
    conn.send_query_params("SELECT $1", &[Some("1")]).unwrap();
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn simple_queries_agree() {
    let t = row_description(&["a"]);
    let d = data_row(&[Some(b"1")]);
    let c = complete("SELECT 1");
    let z = ready();
    let mut t_count = t.clone();
    t_count[6] = 2;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("twice", cat(&[&t, &d, &c, &z, &t, &d, &c, &z])),
        ("command", cat(&[&complete("CREATE TABLE"), &z, &t, &c, &z])),
        (
            "in transaction",
            cat(&[&t, &d, &c, &msg(b'Z', b"T"), &t, &c, &msg(b'Z', b"E")]),
        ),
        (
            "bad status",
            cat(&[&t, &d, &c, &z, &t, &c, &msg(b'Z', b"X")]),
        ),
        ("long status", cat(&[&t, &c, &msg(b'Z', b"II")])),
        ("other count", cat(&[&t, &d, &c, &z, &t_count, &d, &c, &z])),
        ("second description", cat(&[&t, &t, &d, &c, &z])),
        ("ready in rows", cat(&[&t, &d, &z])),
        (
            "tag not ascii",
            cat(&[&t, &d, &complete("SELECT é"), &z, &t, &c, &z]),
        ),
        ("tag with nul", cat(&[&t, &msg(b'C', b"SEL\0ECT\0"), &z])),
        ("tag without nul", cat(&[&t, &msg(b'C', b"SELECT"), &z])),
        (
            "long tag",
            cat(&[&t, &complete(&"X".repeat(40)), &z, &t, &c, &z]),
        ),
        ("short length", cat(&[&t, &c, b"Z\0\0\0\x03I"])),
        (
            "unexpected",
            cat(&[&t, &d, &c, &z, &msg(b'1', b""), &msg(b'n', b"")]),
        ),
        ("no request", cat(&[&t, &c, &z, &c, &z, &z, &t])),
    ];
    for (name, input) in &cases {
        same_both_ways(name, &simple, input);
    }
}

#[test]
fn extended_and_pipelined_queries_agree() {
    let t = row_description(&["a"]);
    let d = data_row(&[Some(b"1")]);
    let c = complete("SELECT 1");
    let (p1, b2, nd) = (msg(b'1', b""), msg(b'2', b""), msg(b'n', b""));
    let z = ready();
    let one = cat(&[&p1, &b2, &t, &d, &c]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("pipeline", cat(&[&one, &p1, &one, &z])),
        (
            "no data",
            cat(&[&p1, &b2, &nd, &complete("INSERT 0 1"), &p1, &one, &z]),
        ),
        (
            "bad parse complete",
            cat(&[&msg(b'1', b"x"), &b2, &t, &d, &c, &p1, &one, &z]),
        ),
        ("bind first", cat(&[&b2, &p1, &t, &d, &c, &z])),
        (
            "bad bind complete",
            cat(&[&p1, &msg(b'2', b"x"), &t, &d, &c, &p1, &one, &z]),
        ),
        (
            "error",
            cat(&[&p1, &b2, &t, &error("22012", "division by zero"), &one, &z]),
        ),
        ("ready early", cat(&[&p1, &b2, &z, &one])),
        (
            "parse error",
            cat(&[&error("42601", "syntax error"), &z, &one]),
        ),
        (
            "bind error",
            cat(&[&p1, &error("22P02", "invalid input"), &z]),
        ),
        (
            "parameter description",
            cat(&[&p1, &b2, &msg(b't', b"\0\0"), &t, &d, &c, &z]),
        ),
        ("complete early", cat(&[&p1, &c, &one, &z])),
    ];
    for (name, input) in &cases {
        same_both_ways(name, &pipelined, input);
    }
    same_both_ways("extended", &extended, &cat(&[&one, &z]));
    same_both_ways("extended twice", &extended, &cat(&[&one, &z, &one, &z]));
}

/// Small row sets are copied into the result itself ([`Chunk::Inline`](super::result::Chunk)):
/// NULLs, several rows, empty values and a row set just too large for it read back the same as
/// through the general path, split anywhere.
#[test]
fn small_row_sets_copied_into_the_result_agree() {
    let t1 = row_description(&["a"]);
    let t3 = row_description(&["a", "b", "c"]);
    let c = complete("SELECT 2");
    let z = ready();
    let fits = "x".repeat(30);
    let too_long = "y".repeat(40);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "nulls and rows",
            cat(&[
                &t3,
                &data_row(&[None, Some(b"1"), None]),
                &data_row(&[Some(b""), None, Some("é".as_bytes())]),
                &c,
                &z,
            ]),
        ),
        (
            "all null",
            cat(&[&t1, &data_row(&[None]), &data_row(&[None]), &c, &z]),
        ),
        (
            "sizes",
            cat(&[
                &t1,
                &data_row(&[Some(fits.as_bytes())]),
                &c,
                &z,
                &t1,
                &data_row(&[Some(too_long.as_bytes())]),
                &c,
                &z,
                &t1,
                &data_row(&[Some(b"abc")]),
                &data_row(&[Some(fits.as_bytes())]),
                &c,
                &z,
            ]),
        ),
        ("not utf8", cat(&[&t1, &data_row(&[Some(b"\xe9")]), &c, &z])),
    ];
    let simple3 = |conn: &mut Connection| {
        for _ in 0..3 {
            conn.queue_query_unchecked("SELECT", None);
        }
    };
    for (name, input) in &cases {
        same_both_ways(name, &simple3, input);
    }
}

/// A row set taken in one go (`T D.. C Z` complete in the input) stops where taking its messages
/// one by one would do something else: a row set beyond `max_result_bytes`, a results budget
/// reached by its result, batches of chunked-rows mode, values checked one by one.
#[test]
fn row_sets_taken_whole_agree_at_budgets_and_modes() {
    let t = row_description(&["a"]);
    let d = data_row(&[Some(b"12345")]);
    let c = complete("SELECT 3");
    // Statuses that change: when a budget holds a ReadyForQuery back, the status shows it.
    let (z1, z2, z3) = (msg(b'Z', b"T"), msg(b'Z', b"E"), ready());
    let twice = cat(&[
        &t, &d, &d, &d, &c, &z1, &t, &d, &d, &d, &c, &z2, &t, &c, &z3,
    ]);
    let with = |budgets: Budgets, chunk_rows: Option<usize>, sql_ascii: bool| {
        move |conn: &mut Connection| {
            conn.set_budgets(budgets);
            if sql_ascii {
                conn.handle_input(&param("client_encoding", "SQL_ASCII"));
            }
            for _ in 0..3 {
                conn.queue_query_unchecked("SELECT", chunk_rows);
            }
        }
    };
    let too_large = Budgets {
        max_result_bytes: 2 * d.len(),
        ..Budgets::default()
    };
    let exact = Budgets {
        max_result_bytes: 3 * d.len(),
        ..Budgets::default()
    };
    let tiny = Budgets::uniform(1);
    let cases = [
        ("too large", with(too_large, None, false)),
        ("just fits", with(exact, None, false)),
        ("results budget", with(tiny, None, false)),
        ("chunked", with(Budgets::default(), Some(2), false)),
        ("checked values", with(Budgets::default(), None, true)),
    ];
    for (name, send) in &cases {
        same_both_ways(name, send, &twice);
    }
}

/// A row set of many passes, each input ending inside a message: the message left over is
/// completed and taken alone, the rest read where it is (checked whole when it is UTF-8). The
/// results agree with taking everything one message at a time, at budgets and in every mode.
#[test]
fn large_row_sets_split_inside_messages_agree() {
    let t = row_description(&["n", "s"]);
    let mut input = t.clone();
    for i in 0..700u32 {
        let text = match i {
            // A length that is packed in a checked pass.
            500 => "long é ".repeat(30),
            _ => format!("row é {i}"),
        };
        let value: &[u8] = match i {
            // Not UTF-8: the pass holding it keeps its bytes as received.
            333 => b"bad \xe9 byte",
            _ => text.as_bytes(),
        };
        let n = i.to_string();
        let row = data_row(&[Some(n.as_bytes()), (i % 7 != 3).then_some(value)]);
        input.extend_from_slice(&row);
    }
    input.extend_from_slice(&complete("SELECT 700"));
    input.extend_from_slice(&ready());
    let with = |budgets: Budgets, chunk_rows: Option<usize>, sql_ascii: bool| {
        move |conn: &mut Connection| {
            conn.set_budgets(budgets);
            if sql_ascii {
                conn.handle_input(&param("client_encoding", "SQL_ASCII"));
            }
            conn.queue_query_unchecked("SELECT", chunk_rows);
        }
    };
    let cases = [
        ("default", with(Budgets::default(), None, false)),
        ("results budget", with(Budgets::uniform(1), None, false)),
        ("chunked", with(Budgets::default(), Some(300), false)),
        ("checked values", with(Budgets::default(), None, true)),
    ];
    for (name, send) in &cases {
        let expected = run(true, send, &input, input.len());
        for step in [4097, 4098, 4099, 4101, 5000, 8191] {
            assert_eq!(
                run(false, send, &input, step),
                expected,
                "{name}, step {step}"
            );
        }
    }
}

/// A COPY TO STDOUT, one CopyData at a time through the general path or many at once through the
/// fast one: the same rows, in the same order, at every budget and split; the same for a COPY
/// pgdblink drains (sent as a plain query), and a CopyData outside any COPY is ignored alike.
#[test]
fn copy_out_data_agrees() {
    let h = msg(b'H', &[0, 0, 2, 0, 0, 0, 0]);
    let mut input = h.clone();
    for i in 0..40u32 {
        let row = match i {
            7 => String::new(),
            _ => format!("{i}\trow {i}\n"),
        };
        input.extend_from_slice(&msg(b'd', row.as_bytes()));
    }
    input.extend_from_slice(&msg(b'c', b""));
    input.extend_from_slice(&complete("COPY 40"));
    input.extend_from_slice(&ready());
    let run_copy = |slow: bool, budgets: Budgets, step: usize, plain: bool| {
        let mut conn = ready_connection(&[]);
        conn.slow_only = slow;
        conn.set_budgets(budgets);
        if plain {
            conn.queue_query_unchecked("COPY t TO STDOUT", None);
        } else {
            conn.send_copy("COPY t TO STDOUT", CopyDirection::Out)
                .unwrap();
        }
        conn.consume_output(conn.pending_output().len());
        let mut rows = Vec::new();
        for piece in input.chunks(step) {
            conn.handle_input(piece);
            rows.push(format!("wants_read {}", conn.wants_read()));
            while let Some(row) = conn.take_copy_data() {
                rows.push(String::from_utf8_lossy(&row).into_owned());
            }
        }
        format!("{rows:?} {}", observe(&mut conn))
    };
    for plain in [false, true] {
        for budgets in [
            Budgets::default(),
            Budgets::uniform(1),
            Budgets::uniform(30),
        ] {
            for step in [input.len(), 1, 3, 7, 64] {
                let expected = run_copy(true, budgets, step, plain);
                assert_eq!(
                    run_copy(false, budgets, step, plain),
                    expected,
                    "plain {plain}, budgets {budgets:?}, step {step}"
                );
            }
        }
    }
    // CopyData after the COPY ended (and before any): dropped by both paths.
    let d = msg(b'd', b"stray");
    let late = cat(&[
        &d,
        &h,
        &d,
        &msg(b'c', b""),
        &complete("COPY 1"),
        &d,
        &ready(),
    ]);
    same_both_ways(
        "stray CopyData",
        &|conn: &mut Connection| {
            conn.send_copy("COPY t TO STDOUT", CopyDirection::Out)
                .unwrap();
        },
        &late,
    );
}
