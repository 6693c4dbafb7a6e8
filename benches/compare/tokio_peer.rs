//! tokio-postgres doing the scenarios' work, on a current-thread runtime in the measuring thread.

use std::time::{Duration, Instant};

use pgdblink::bench::ScenarioResult;
use tokio_postgres::{NoTls, SimpleQueryMessage};

use super::Stopwatch;

/// Wall and thread-CPU time around `f`.
async fn measured<F: std::future::Future<Output = Result<u64, String>>>(
    name: &str,
    f: F,
) -> Result<ScenarioResult, String> {
    let watch = Stopwatch::start();
    let ops = f.await?;
    Ok(watch.result(name, ops))
}

pub async fn tokio_client(conninfo: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    Ok(client)
}

pub async fn tokio_round_trips(
    conninfo: &str,
    duration: Duration,
) -> Result<ScenarioResult, String> {
    let client = tokio_client(conninfo).await?;
    for _ in 0..100 {
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| e.to_string())?;
    }
    measured("rt", async {
        let t0 = Instant::now();
        let mut ops = 0;
        while t0.elapsed() < duration {
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| e.to_string())?;
            ops += 1;
        }
        Ok(ops)
    })
    .await
}

pub async fn tokio_rows(conninfo: &str, n: u64) -> Result<ScenarioResult, String> {
    let client = tokio_client(conninfo).await?;
    let sql = format!("SELECT g, 'row ' || g FROM generate_series(1, {n}) AS g");
    measured("rows", async {
        let messages = client.simple_query(&sql).await.map_err(|e| e.to_string())?;
        let mut rows = 0;
        let mut bytes = 0usize;
        for m in &messages {
            if let SimpleQueryMessage::Row(row) = m {
                bytes += row.get(0).map_or(0, str::len) + row.get(1).map_or(0, str::len);
                rows += 1;
            }
        }
        std::hint::black_box(bytes);
        Ok(rows)
    })
    .await
}

/// Implicit pipelining: 1,000 executions of a prepared `SELECT $1::text` polled together (each with
/// its own Sync, as tokio-postgres sends them), in rounds, for `duration`.
pub async fn tokio_pipeline(conninfo: &str, duration: Duration) -> Result<ScenarioResult, String> {
    let client = tokio_client(conninfo).await?;
    let statement = client
        .prepare("SELECT $1::text")
        .await
        .map_err(|e| e.to_string())?;
    let values: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let params: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 1]> =
        values.iter().map(|v| [v as _]).collect();
    measured("pipeline", async {
        let t0 = Instant::now();
        let mut ops = 0u64;
        while t0.elapsed() < duration {
            let round = params.iter().map(|p| client.query_one(&statement, p));
            for (row, v) in join_all(round).await.into_iter().zip(&values) {
                let row = row.map_err(|e| e.to_string())?;
                if row.get::<_, &str>(0) != v.as_str() {
                    return Err("wrong value".to_owned());
                }
            }
            ops += values.len() as u64;
        }
        Ok(ops)
    })
    .await
}

pub async fn tokio_fan_out(
    conninfo: &str,
    n: usize,
    duration: Duration,
) -> Result<ScenarioResult, String> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(tokio_client(conninfo).await?);
    }
    let clients = std::rc::Rc::new(clients);
    measured("fanout", async {
        let t0 = Instant::now();
        let mut ops = 0u64;
        while t0.elapsed() < duration {
            // One round: SELECT 1 on every connection at once, all awaited together.
            let round = clients.iter().map(|c| c.simple_query("SELECT 1"));
            for r in join_all(round).await {
                r.map_err(|e| e.to_string())?;
            }
            ops += n as u64;
        }
        Ok(ops)
    })
    .await
}

/// Awaits all futures concurrently on this thread (what `futures::future::join_all` does).
pub async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, f) in pending.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outputs[i] = Some(v),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("ready")).collect()
}

pub async fn tokio_connect(conninfo: &str, duration: Duration) -> Result<ScenarioResult, String> {
    drop(tokio_client(conninfo).await?);
    measured("connect", async {
        let t0 = Instant::now();
        let mut ops = 0;
        while t0.elapsed() < duration {
            drop(tokio_client(conninfo).await?);
            ops += 1;
        }
        Ok(ops)
    })
    .await
}

/// COPY FROM STDIN of `n` rows `(int8, text)` through tokio-postgres's `CopyInSink`, in 64 KiB
/// pieces generated as they are sent (what pgdblink's and libpq's sides do).
pub async fn tokio_copy_in(conninfo: &str, n: u64) -> Result<ScenarioResult, String> {
    use futures_util::SinkExt;
    use std::io::Write;
    let client = tokio_client(conninfo).await?;
    client
        .batch_execute("CREATE TEMP TABLE bench_copy (a int8, b text)")
        .await
        .map_err(|e| e.to_string())?;
    measured("copyin", async {
        let sink = client
            .copy_in::<_, bytes::Bytes>("COPY bench_copy FROM STDIN")
            .await
            .map_err(|e| e.to_string())?;
        futures_util::pin_mut!(sink);
        let mut buf = Vec::with_capacity(64 * 1024 + 64);
        let mut i = 0u64;
        while i < n {
            buf.clear();
            while buf.len() < 64 * 1024 && i < n {
                i += 1;
                writeln!(buf, "{i}\trow {i}").map_err(|e| e.to_string())?;
            }
            sink.send(bytes::Bytes::copy_from_slice(&buf))
                .await
                .map_err(|e| e.to_string())?;
        }
        sink.as_mut().finish().await.map_err(|e| e.to_string())
    })
    .await
}

/// COPY TO STDOUT of `n` rows `(int8, text)` through tokio-postgres's `CopyOutStream`, every piece
/// taken and dropped (the others write to a sink). One operation is one row; the stream's pieces
/// are counted by their line ends to check that every row came.
pub async fn tokio_copy_out(conninfo: &str, n: u64) -> Result<ScenarioResult, String> {
    use futures_util::StreamExt;
    let client = tokio_client(conninfo).await?;
    let sql =
        format!("COPY (SELECT g::int8, 'row ' || g FROM generate_series(1, {n}) AS g) TO STDOUT");
    measured("copyout", async {
        let stream = client.copy_out(&sql).await.map_err(|e| e.to_string())?;
        futures_util::pin_mut!(stream);
        let mut rows = 0u64;
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| e.to_string())?;
            // Each CopyData of a text COPY is one row.
            rows += u64::from(piece.last() == Some(&b'\n'));
        }
        Ok(rows)
    })
    .await
}
