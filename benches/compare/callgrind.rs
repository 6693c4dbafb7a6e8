//! `--callgrind`: the client's own instructions per query, counted by callgrind for pgdblink, libpq
//! and tokio-postgres running the same loop a fixed number of times. Each client runs in its own
//! process under `valgrind --tool=callgrind --toggle-collect=<its loop>`: only the loop's user-space
//! instructions are counted (not connecting, not warming up, not the kernel, not the server). The
//! Rust clients are this bench binary re-run as `--callgrind-child CLIENT KIND CONNINFO`; libpq is
//! the peer's `cg-*` modes. The `raw, epoll` floor client (no library: pre-encoded queries, replies
//! walked by header) runs the same loops: how far each client is from the least work possible.

use std::path::{Path, PathBuf};
use std::process::Command;

use pgdblink::Dblink;
use pgdblink::bench;
use pgdblink::driver::Client;

use super::tokio_peer::{join_all, tokio_client};

/// What is counted: (scenario as the table names it, kind, queries).
pub const KINDS: [(&str, &str, u64); 3] = [
    ("round trips", "rt", RT_QUERIES),
    (
        "fan-out, 50 connections",
        "fanout",
        FANOUT_ROUNDS * FANOUT_CONNS as u64,
    ),
    (
        "pipeline (SELECT $1, depth 1,000)",
        "pipeline",
        PIPELINE_BATCHES * 1000,
    ),
];
const RT_QUERIES: u64 = 2000;
const FANOUT_CONNS: usize = 50;
const FANOUT_ROUNDS: u64 = 40;
const PIPELINE_BATCHES: u64 = 2;

/// Instructions per query of one client in one scenario, or why there is no figure.
pub struct Count {
    pub scenario: &'static str,
    pub client: &'static str,
    pub per_query: Result<f64, String>,
}

/// Runs every client's loop of every kind under callgrind.
pub fn run_all(peer: &Result<PathBuf, String>, conninfo: &str) -> Vec<Count> {
    let exe = std::env::current_exe().map_err(|e| e.to_string());
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/callgrind");
    let _ = std::fs::create_dir_all(&out_dir);
    let mut counts = Vec::new();
    for (scenario, kind, queries) in KINDS {
        for client in ["pgdblink", "libpq", "tokio-postgres", "raw, epoll"] {
            eprintln!("callgrind: {scenario}, {client} ...");
            let (program, toggle, args): (Result<PathBuf, String>, String, Vec<String>) =
                match client {
                    "libpq" => (
                        peer.clone(),
                        format!("cg_loop_{kind}"),
                        match kind {
                            "rt" => vec!["cg-rt".into(), conninfo.into(), RT_QUERIES.to_string()],
                            "fanout" => vec![
                                "cg-fanout".into(),
                                conninfo.into(),
                                FANOUT_CONNS.to_string(),
                                FANOUT_ROUNDS.to_string(),
                            ],
                            _ => vec![
                                "cg-pipeline".into(),
                                conninfo.into(),
                                PIPELINE_BATCHES.to_string(),
                            ],
                        },
                    ),
                    "raw, epoll" => (
                        exe.clone(),
                        "compare::floor::cg_loop_floor".to_owned(),
                        vec![
                            "--callgrind-child".into(),
                            "floor".into(),
                            kind.into(),
                            conninfo.into(),
                        ],
                    ),
                    _ => {
                        let short = if client == "pgdblink" {
                            "pgdblink"
                        } else {
                            "tokio"
                        };
                        (
                            exe.clone(),
                            format!("compare::callgrind::cg_loop_{short}_{kind}"),
                            vec![
                                "--callgrind-child".into(),
                                short.into(),
                                kind.into(),
                                conninfo.into(),
                            ],
                        )
                    }
                };
            let file_client = if client == "raw, epoll" {
                "floor"
            } else {
                client
            };
            let out_file = out_dir.join(format!("{kind}.{file_client}.out"));
            let per_query = program.and_then(|p| {
                let collected = valgrind(&p, &toggle, &args, &out_file)?;
                Ok(collected as f64 / queries as f64)
            });
            if let Err(e) = &per_query {
                eprintln!("  {e}");
            }
            counts.push(Count {
                scenario,
                client,
                per_query,
            });
        }
    }
    counts
}

/// Runs `program args` under callgrind collecting only inside `toggle`; returns the instructions.
fn valgrind(program: &Path, toggle: &str, args: &[String], out_file: &Path) -> Result<u64, String> {
    let out = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(format!("--toggle-collect={toggle}"))
        .arg(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "valgrind failed: {}",
            stderr.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
        ));
    }
    stderr
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("no instructions collected inside {toggle}"))
}

/// `--callgrind-child CLIENT KIND CONNINFO`: connects, warms up, runs the counted loop, exits.
pub fn child(args: &[String]) -> ! {
    let [client, kind, conninfo] = args else {
        eprintln!("usage: --callgrind-child pgdblink|tokio|floor rt|fanout|pipeline CONNINFO");
        std::process::exit(2);
    };
    let outcome = match client.as_str() {
        "pgdblink" => pgdblink_child(kind, conninfo).map_err(|e| e.to_string()),
        "tokio" => tokio_child(kind, conninfo),
        "floor" => match kind.as_str() {
            "rt" => super::floor::counted(conninfo, kind, 1, RT_QUERIES),
            "fanout" => super::floor::counted(conninfo, kind, FANOUT_CONNS, FANOUT_ROUNDS),
            _ => super::floor::counted(conninfo, kind, 1, PIPELINE_BATCHES),
        },
        _ => Err(format!("unknown client {client}")),
    };
    match outcome {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    }
}

fn select_1(client: &mut Client) -> Result<(), pgdblink::Error> {
    client.send_query("SELECT 1")?;
    while client.get_result()?.is_some() {}
    Ok(())
}

#[inline(never)]
fn cg_loop_pgdblink_rt(client: &mut Client, n: u64) -> Result<(), pgdblink::Error> {
    (0..n).try_for_each(|_| select_1(client))
}

#[inline(never)]
fn cg_loop_pgdblink_fanout(db: &mut Dblink, names: &[String]) -> Result<(), pgdblink::Error> {
    (0..FANOUT_ROUNDS).try_for_each(|_| bench::fan_out_round(db, names))
}

#[inline(never)]
fn cg_loop_pgdblink_pipeline(
    client: &mut Client,
    values: &[String],
) -> Result<(), pgdblink::Error> {
    (0..PIPELINE_BATCHES).try_for_each(|_| bench::pipeline_batch(client, values))
}

fn pgdblink_child(kind: &str, conninfo: &str) -> Result<(), pgdblink::Error> {
    match kind {
        "rt" => {
            let mut client = Client::connect(conninfo)?;
            (0..100).try_for_each(|_| select_1(&mut client))?;
            cg_loop_pgdblink_rt(&mut client, RT_QUERIES)
        }
        "fanout" => {
            let mut db = Dblink::try_new()?;
            let names: Vec<String> = (0..FANOUT_CONNS).map(|i| format!("c{i}")).collect();
            for name in &names {
                db.connect(name, conninfo)?;
            }
            bench::fan_out_round(&mut db, &names)?;
            cg_loop_pgdblink_fanout(&mut db, &names)
        }
        _ => {
            let mut client = Client::connect(conninfo)?;
            let values: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
            client.enter_pipeline_mode()?;
            bench::pipeline_batch(&mut client, &values)?;
            cg_loop_pgdblink_pipeline(&mut client, &values)
        }
    }
}

type Rt = tokio::runtime::Runtime;

async fn tokio_rt_loop(client: &tokio_postgres::Client, n: u64) -> Result<(), String> {
    for _ in 0..n {
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn tokio_fanout_round(clients: &[tokio_postgres::Client]) -> Result<(), String> {
    for r in join_all(clients.iter().map(|c| c.simple_query("SELECT 1"))).await {
        r.map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn tokio_pipeline_batch(
    client: &tokio_postgres::Client,
    statement: &tokio_postgres::Statement,
    values: &[String],
) -> Result<(), String> {
    let params: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 1]> =
        values.iter().map(|v| [v as _]).collect();
    let round = params.iter().map(|p| client.query_one(statement, p));
    for (row, v) in join_all(round).await.into_iter().zip(values) {
        if row.map_err(|e| e.to_string())?.get::<_, &str>(0) != v.as_str() {
            return Err("wrong value".to_owned());
        }
    }
    Ok(())
}

#[inline(never)]
fn cg_loop_tokio_rt(rt: &Rt, client: &tokio_postgres::Client) -> Result<(), String> {
    rt.block_on(tokio_rt_loop(client, RT_QUERIES))
}

#[inline(never)]
fn cg_loop_tokio_fanout(rt: &Rt, clients: &[tokio_postgres::Client]) -> Result<(), String> {
    rt.block_on(async {
        for _ in 0..FANOUT_ROUNDS {
            tokio_fanout_round(clients).await?;
        }
        Ok(())
    })
}

#[inline(never)]
fn cg_loop_tokio_pipeline(
    rt: &Rt,
    client: &tokio_postgres::Client,
    statement: &tokio_postgres::Statement,
    values: &[String],
) -> Result<(), String> {
    rt.block_on(async {
        for _ in 0..PIPELINE_BATCHES {
            tokio_pipeline_batch(client, statement, values).await?;
        }
        Ok(())
    })
}

fn tokio_child(kind: &str, conninfo: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    match kind {
        "rt" => {
            let client = rt.block_on(tokio_client(conninfo))?;
            rt.block_on(tokio_rt_loop(&client, 100))?;
            cg_loop_tokio_rt(&rt, &client)
        }
        "fanout" => {
            let clients = rt.block_on(async {
                let mut clients = Vec::new();
                for _ in 0..FANOUT_CONNS {
                    clients.push(tokio_client(conninfo).await?);
                }
                Ok::<_, String>(clients)
            })?;
            rt.block_on(tokio_fanout_round(&clients))?;
            cg_loop_tokio_fanout(&rt, &clients)
        }
        _ => {
            let client = rt.block_on(tokio_client(conninfo))?;
            let statement = rt
                .block_on(client.prepare("SELECT $1::text"))
                .map_err(|e| e.to_string())?;
            let values: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
            rt.block_on(tokio_pipeline_batch(&client, &statement, &values))?;
            cg_loop_tokio_pipeline(&rt, &client, &statement, &values)
        }
    }
}

/// The table of instructions per query, each client beside libpq.
pub fn print(counts: &[Count]) {
    println!();
    println!(
        "Client instructions per query (callgrind, user space, the client process's counted loop only)"
    );
    println!();
    println!(
        "| {:<34} | {:>12} | {:>12} | {:>14} | {:>10} | {:>15} | {:>15} | {:>15} |",
        "scenario",
        "pgdblink",
        "libpq",
        "tokio-postgres",
        "raw, epoll",
        "pgdblink/libpq",
        "tokio/libpq",
        "pgdblink/floor"
    );
    println!(
        "|{:-<36}|{:->14}|{:->14}|{:->16}|{:->12}|{:->17}|{:->17}|{:->17}|",
        "", "", "", "", "", "", "", ""
    );
    for (scenario, _, _) in KINDS {
        let get = |client: &str| {
            counts
                .iter()
                .find(|c| c.scenario == scenario && c.client == client)
                .and_then(|c| c.per_query.as_ref().ok().copied())
        };
        let cell = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
            _ => "-".to_owned(),
        };
        let (p, l, t) = (get("pgdblink"), get("libpq"), get("tokio-postgres"));
        let f = get("raw, epoll");
        println!(
            "| {:<34} | {:>12} | {:>12} | {:>14} | {:>10} | {:>15} | {:>15} | {:>15} |",
            scenario,
            cell(p),
            cell(l),
            cell(t),
            cell(f),
            ratio(p, l),
            ratio(t, l),
            ratio(p, f)
        );
    }
}
