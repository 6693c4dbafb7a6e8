//! The compare bench's output: the table on stdout, `target/compare.json` and the SVG chart.

use std::path::Path;

use super::{Row, chart};

/// Prints the table of medians, ratios and spreads to stdout.
pub fn print_table(table: &[Row], pinned: &str) {
    println!("pgdblink vs libpq (async API) vs tokio-postgres, same server, same run; {pinned}");
    println!();
    println!(
        "| {:<26} | {:<14} | {:>12} | {:>16} | {:>14} | {:>12} | {:>13} | {:<17} |",
        "scenario",
        "client",
        "ops/s",
        "client CPU µs/op",
        "ops/s vs libpq",
        "CPU vs libpq",
        "paired ratios",
        "runs (ops/s)"
    );
    println!(
        "|{:-<28}|{:-<16}|{:->14}|{:->18}|{:->16}|{:->14}|{:->15}|{:-<19}|",
        "", "", "", "", "", "", "", ""
    );
    for row in table {
        let libpq = table
            .iter()
            .find(|r| r.scenario == row.scenario && r.client == "libpq")
            .and_then(|r| r.result.as_ref());
        match &row.result {
            Some(r) => {
                let (speed, cpu) = match libpq {
                    Some(l) => (
                        format!("{:.2}x", r.ops_per_second() / l.ops_per_second()),
                        format!(
                            "{:.2}x",
                            r.client_cpu_us_per_op() / l.client_cpu_us_per_op()
                        ),
                    ),
                    None => ("-".into(), "-".into()),
                };
                let paired = match row.paired {
                    Some((ops, cpu)) => format!("{ops:.2}x {cpu:.2}x"),
                    None => "-".into(),
                };
                println!(
                    "| {:<26} | {:<14} | {:>12.0} | {:>16.3} | {:>14} | {:>12} | {:>13} | {:<17} |",
                    row.scenario,
                    row.client,
                    r.ops_per_second(),
                    r.client_cpu_us_per_op(),
                    speed,
                    cpu,
                    paired,
                    row.note
                );
            }
            None => println!("| {:<26} | {:<14} | {}", row.scenario, row.client, row.note),
        }
    }
    if table.iter().any(|r| r.client.starts_with("raw")) {
        println!();
        println!(
            "raw, epoll / raw, blocking: the floor, no client library (benches/compare/floor.rs): \
             pre-encoded messages, replies walked by their headers only. rows: every byte received, \
             the DataRows counted, no value looked at (the other clients visit every value); copy \
             out: CopyData counted and dropped; copy in: the same rows and message sizes, encoded \
             before the clock starts."
        );
    }
}

/// Writes the same figures, with the servers' CPU time where measured, to `target/compare.json`.
pub fn write_json(table: &[Row], pinned: &str) {
    let mut out = format!("{{\"pinning\": {pinned:?}, \"results\": [");
    for (i, row) in table.iter().filter(|r| r.result.is_some()).enumerate() {
        let r = row.result.as_ref().expect("filtered");
        if i > 0 {
            out.push(',');
        }
        let paired = match row.paired {
            Some((ops, cpu)) => format!(
                ", \"paired_ops_ratio_vs_libpq\": {ops:.4}, \"paired_cpu_ratio_vs_libpq\": {cpu:.4}"
            ),
            None => String::new(),
        };
        let server = r
            .server_cpu_seconds
            .map(|s| format!(", \"server_cpu_seconds\": {s:.6}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{{\"scenario\": {:?}, \"client\": {:?}, \"operations\": {}, \"seconds\": {:.6}, \"client_cpu_seconds\": {:.6}{server}{paired}}}",
            row.scenario, row.client, r.operations, r.seconds, r.client_cpu_seconds
        ));
    }
    out.push_str("]}\n");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/compare.json");
    let _ = std::fs::write(path, out);
}

/// Writes the chart of every client's median ops/s (whiskers slowest..fastest run) to `svg`.
pub fn write_chart(table: &[Row], svg: &Path, repeat: usize, no_pin: bool) {
    let bars: Vec<chart::Bar> = table
        .iter()
        .filter_map(|r| {
            Some(chart::Bar {
                scenario: &r.scenario,
                client: r.client,
                median: r.result.as_ref()?.ops_per_second(),
                lo: r.lo,
                hi: r.hi,
            })
        })
        .collect();
    let title = format!(
        "ops/s relative to libpq: median of {repeat} runs, whiskers slowest..fastest{}",
        if no_pin {
            " (not pinned)"
        } else {
            ", pinned to one core"
        }
    );
    match chart::write_svg(svg, &title, &bars) {
        Ok(()) => eprintln!("chart: {}", svg.display()),
        Err(e) => eprintln!("chart not written: {e}"),
    }
}
