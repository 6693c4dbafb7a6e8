//! psql-style aligned tables and error texts, shared by every subcommand.

use pgdblink::{Error, QueryResult, Rows};

/// How a column's values are aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table in psql's `aligned` format: a centred header, a `-+-` rule, one line per row.
#[derive(Debug, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub align: Vec<Align>,
    pub rows: Vec<Vec<String>>,
}

/// Display width: one column per character (no East Asian wide characters in our own output).
fn width(s: &str) -> usize {
    s.chars().count()
}

impl Table {
    /// The table's lines, each ending in a newline (without psql's `(N rows)` footer).
    pub fn render(&self) -> String {
        let ncols = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String], header: bool| {
            let mut text = String::new();
            for (i, cell) in cells.iter().enumerate().take(ncols) {
                if i > 0 {
                    text.push('|');
                }
                let pad = widths[i] - width(cell);
                let (before, after) = if header {
                    (pad / 2, pad - pad / 2)
                } else if self.align.get(i) == Some(&Align::Right) {
                    (pad, 0)
                } else {
                    (0, pad)
                };
                text.push(' ');
                text.extend(std::iter::repeat_n(' ', before));
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', after));
                text.push(' ');
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&mut out, &self.headers, true);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
        out.push_str(&rule.join("+"));
        out.push('\n');
        for row in &self.rows {
            line(&mut out, row, false);
        }
        out
    }
}

/// Whether psql right-aligns values of this type (the numeric types).
fn numeric_type(oid: u32) -> bool {
    // int8, int2, int4, oid, float4, float8, money, numeric
    matches!(oid, 20 | 21 | 23 | 26 | 700 | 701 | 790 | 1700)
}

/// `(1 row)` / `(N rows)`.
pub fn row_count(n: usize) -> String {
    if n == 1 {
        "(1 row)".to_owned()
    } else {
        format!("({n} rows)")
    }
}

/// Rows as a psql table with its row-count footer and a blank line; SQL NULL shown as `null`. Newlines, tabs and
/// carriage returns inside values are shown as `\n`, `\t`, `\r` to keep one line per row.
pub fn render_rows(rows: &Rows, null: &str) -> String {
    let table = Table {
        headers: rows.columns().iter().map(|c| c.name().to_owned()).collect(),
        align: rows
            .columns()
            .iter()
            .map(|c| {
                if numeric_type(c.type_oid()) {
                    Align::Right
                } else {
                    Align::Left
                }
            })
            .collect(),
        rows: rows
            .iter()
            .map(|row| {
                (0..row.len())
                    .map(|c| match row.get(c) {
                        Some(v) => escape_controls(v),
                        None => null.to_owned(),
                    })
                    .collect()
            })
            .collect(),
    };
    let mut out = table.render();
    out.push_str(&row_count(rows.len()));
    out.push_str("\n\n");
    out
}

fn escape_controls(v: &str) -> String {
    if !v.contains(['\n', '\t', '\r']) {
        return v.to_owned();
    }
    v.replace('\n', "\\n")
        .replace('\t', "\\t")
        .replace('\r', "\\r")
}

/// One statement's result: its table, or its command tag, or `(empty query)`.
pub fn render_result(result: &QueryResult, null: &str) -> String {
    match result.rows() {
        Some(rows) => render_rows(rows, null),
        None if result.command_tag().is_empty() => "(empty query)\n".to_owned(),
        None => format!("{}\n", result.command_tag()),
    }
}

/// An error or notice as libpq formats it (`ERROR:  msg`, `DETAIL:  ...`, `HINT:  ...`), with a
/// `SQLSTATE: xxxxx` line after the first line of an error (not of a notice).
pub fn render_error(e: &Error) -> String {
    let text = e.libpq_text();
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let mut out = String::new();
    if e.severity().is_none() {
        out.push_str("ERROR:  ");
    }
    out.push_str(first);
    out.push('\n');
    let error = !matches!(
        e.severity(),
        Some("NOTICE" | "WARNING" | "INFO" | "LOG" | "DEBUG")
    );
    if let Some(code) = e.code().filter(|_| error) {
        out.push_str("SQLSTATE: ");
        out.push_str(code);
        out.push('\n');
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_psql_layout() {
        let t = Table {
            headers: vec!["n".into(), "name".into()],
            align: vec![Align::Right, Align::Left],
            rows: vec![vec!["1".into(), "a".into()], vec!["100".into(), "∅".into()]],
        };
        assert_eq!(
            t.render(),
            "  n  | name\n-----+------\n   1 | a\n 100 | ∅\n"
        );
    }
}
