//! psql-style aligned tables and error texts, shared by every subcommand.
//!
//! Values are shown as psql's `aligned` format shows them: columns padded to their display width
//! (East Asian wide characters count two columns, combining marks none), a value with a newline on
//! several lines with `+` at the column's right edge, a tab expanded to the next multiple of 8, a
//! carriage return as `\r` and any other control character as `\xHH`. SQL NULL is shown as the NULL
//! marker (empty by default, as psql); a value that would read as the marker is shown in double
//! quotes (`""` for an empty string when the marker is empty), and a value that would read as a
//! quoted marker gets one more pair, so no value is ever mistaken for NULL.

use pgdblink::{Error, QueryResult, Rows};
use unicode_width::UnicodeWidthStr;

/// How a column's values are aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table in psql's `aligned` format: a centred header, a `-+-` rule, one line per row (several for
/// a value with newlines).
#[derive(Debug, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub align: Vec<Align>,
    pub rows: Vec<Vec<String>>,
}

/// Display width in terminal columns.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// A value's display lines, as psql's `pg_wcsformat` makes them.
fn lines(v: &str) -> Vec<String> {
    if !v.contains(|c: char| c.is_control()) {
        return vec![v.to_owned()];
    }
    v.split('\n')
        .map(|line| {
            let mut out = String::with_capacity(line.len());
            let mut w: usize = 0;
            for c in line.chars() {
                match c {
                    '\t' => loop {
                        out.push(' ');
                        w += 1;
                        if w.is_multiple_of(8) {
                            break;
                        }
                    },
                    '\r' => {
                        out.push_str("\\r");
                        w += 2;
                    }
                    c if c.is_control() => {
                        let text = format!("\\x{:02X}", u32::from(c));
                        w += text.len();
                        out.push_str(&text);
                    }
                    c => {
                        out.push(c);
                        w += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
                    }
                }
            }
            out
        })
        .collect()
}

impl Table {
    /// The table's lines, each ending in a newline (without psql's `(N rows)` footer).
    pub fn render(&self) -> String {
        self.render_part(true)
    }

    /// The table's lines, the header and rule only if `header`; columns are as wide as this part
    /// needs (psql's FETCH_COUNT: each chunk aligned on its own).
    pub fn render_part(&self, header: bool) -> String {
        let ncols = self.headers.len();
        if ncols == 0 {
            // psql prints no header and no value for a result without columns.
            return if header {
                "--\n".to_owned()
            } else {
                String::new()
            };
        }
        let headers: Vec<Vec<String>> = self.headers.iter().map(|h| lines(h)).collect();
        let rows: Vec<Vec<Vec<String>>> = self
            .rows
            .iter()
            .map(|row| row.iter().take(ncols).map(|v| lines(v)).collect())
            .collect();
        let mut widths = vec![0; ncols];
        for cells in std::iter::once(&headers).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(cells) {
                for line in cell {
                    *w = (*w).max(width(line));
                }
            }
        }
        let mut out = String::new();
        if header {
            self.push_row(&mut out, &headers, &widths, true);
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
            out.push_str(&rule.join("+"));
            out.push('\n');
        }
        for row in &rows {
            self.push_row(&mut out, row, &widths, false);
        }
        out
    }

    /// One row: as many lines as its tallest cell; `+` after a cell line that continues below.
    fn push_row(&self, out: &mut String, cells: &[Vec<String>], widths: &[usize], header: bool) {
        let height = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
        for i in 0..height {
            let mut text = String::new();
            for (j, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if j > 0 {
                    text.push('|');
                }
                let line = cell.get(i).map_or("", String::as_str);
                let pad = w.saturating_sub(width(line));
                let (before, after) = if header {
                    (pad / 2, pad - pad / 2)
                } else if self.align.get(j) == Some(&Align::Right) {
                    (pad, 0)
                } else {
                    (0, pad)
                };
                text.push(' ');
                text.extend(std::iter::repeat_n(' ', before));
                text.push_str(line);
                text.extend(std::iter::repeat_n(' ', after));
                text.push(if i + 1 < cell.len() { '+' } else { ' ' });
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
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

/// Whether `v` reads as the NULL marker, bare or in any number of pairs of double quotes.
fn reads_as_marker(v: &str, null: &str) -> bool {
    v == null
        || (v.len() >= 2
            && v.starts_with('"')
            && v.ends_with('"')
            && reads_as_marker(&v[1..v.len() - 1], null))
}

/// A value as shown: the NULL marker for SQL NULL; a value that reads as the marker in quotes.
pub fn shown(v: Option<&str>, null: &str) -> String {
    match v {
        None => null.to_owned(),
        Some(v) if reads_as_marker(v, null) => format!("\"{v}\""),
        Some(v) => v.to_owned(),
    }
}

/// A table of these rows (a chunk of a row set), without the footer.
pub fn rows_table(rows: &Rows, null: &str) -> Table {
    Table {
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
                    .map(|c| {
                        let v = if row.is_null(c) {
                            None
                        } else {
                            Some(String::from_utf8_lossy(
                                row.get_bytes(c).unwrap_or_default(),
                            ))
                        };
                        shown(v.as_deref(), null)
                    })
                    .collect()
            })
            .collect(),
    }
}

/// Rows as a psql table with its row-count footer and a blank line.
pub fn render_rows(rows: &Rows, null: &str) -> String {
    let mut out = rows_table(rows, null).render();
    out.push_str(&row_count(rows.len()));
    out.push_str("\n\n");
    out
}

/// One statement's result: its table, or its command tag, or `(empty query)`.
pub fn render_result(result: &QueryResult, null: &str) -> String {
    match result {
        QueryResult::Rows(rows) => render_rows(rows, null),
        QueryResult::PipelineSync => "(pipeline sync)\n".to_owned(),
        QueryResult::PipelineAborted => "(pipeline aborted)\n".to_owned(),
        r if r.command_tag().is_empty() => "(empty query)\n".to_owned(),
        r => format!("{}\n", r.command_tag()),
    }
}

/// An error or notice as libpq formats it (`ERROR:  msg`, `DETAIL:  ...`, `HINT:  ...`), with a
/// `SQLSTATE: xxxxx` line after the whole message (all its lines) of an error (not of a notice).
pub fn render_error(e: &Error) -> String {
    let mut text = e.libpq_text();
    if e.severity().is_none() {
        text.insert_str(0, "ERROR:  ");
    }
    let error = !matches!(
        e.severity(),
        Some("NOTICE" | "WARNING" | "INFO" | "LOG" | "DEBUG")
    );
    let Some(code) = e.code().filter(|_| error) else {
        return text;
    };
    // The message's own lines come first (a connection failure's text has several).
    let message_lines = e.message().trim_end_matches('\n').matches('\n').count() + 1;
    let split = text
        .match_indices('\n')
        .nth(message_lines - 1)
        .map_or(text.len(), |(i, _)| i + 1);
    let mut out = String::with_capacity(text.len() + 20);
    out.push_str(&text[..split]);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("SQLSTATE: ");
    out.push_str(code);
    out.push('\n');
    out.push_str(&text[split..]);
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
            rows: vec![vec!["1".into(), "a".into()], vec!["100".into(), "".into()]],
        };
        assert_eq!(t.render(), "  n  | name\n-----+------\n   1 | a\n 100 |\n");
    }

    #[test]
    fn table_wide_characters_and_newlines() {
        let t = Table {
            headers: vec!["k".into(), "v".into()],
            align: vec![Align::Left, Align::Left],
            rows: vec![
                vec!["日本".into(), "a\nbb".into()],
                vec!["x\ty".into(), "c".into()],
            ],
        };
        assert_eq!(
            t.render(),
            "     k     | v\n-----------+----\n 日本      | a +\n           | bb\n x       y | c\n"
        );
    }

    #[test]
    fn marker_never_reads_as_a_value() {
        assert_eq!(shown(None, ""), "");
        assert_eq!(shown(Some(""), ""), "\"\"");
        assert_eq!(shown(Some("\"\""), ""), "\"\"\"\"");
        assert_eq!(shown(Some("x"), ""), "x");
        assert_eq!(shown(None, "NULL"), "NULL");
        assert_eq!(shown(Some("NULL"), "NULL"), "\"NULL\"");
        assert_eq!(shown(Some("\"NULL\""), "NULL"), "\"\"NULL\"\"");
        assert_eq!(shown(Some("\"x\""), "NULL"), "\"x\"");
    }

    #[test]
    fn zero_columns_as_psql() {
        let t = Table::default();
        assert_eq!(t.render(), "--\n");
    }

    #[test]
    fn sqlstate_after_the_whole_message() {
        let e = Error::new(pgdblink::ErrorKind::Io, "first\n\tsecond")
            .with_severity("ERROR")
            .with_code("08001")
            .with_detail("d");
        assert_eq!(
            render_error(&e),
            "ERROR:  first\n\tsecond\nSQLSTATE: 08001\nDETAIL:  d\n"
        );
    }
}
