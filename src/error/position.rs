//! The error cursor: libpq's `LINE n:` line and the caret under the error position.
//!
//! libpq's `reportErrorPosition` (fe-protocol3.c) shows where in the query a server error points:
//! the line holding the position, prefixed `LINE n: `, and under it a `^` at the position. The rules
//! kept here, so the text matches what psql and dblink print byte for byte:
//!
//! - the position counts characters (not bytes) from 1; 0, a negative or a non-numeric position
//!   shows nothing, and neither does one past the end of the query plus one;
//! - each `\r` or `\n` ends a line, except that `\r\n` together end one;
//! - a tab is shown as one space;
//! - every character takes its display width: two columns for East Asian wide and full-width
//!   characters, one for every other, control and combining characters included;
//! - a line wider than 60 columns is cut, marked with `...`: on the right when the position is at
//!   least 10 columns from the cut, otherwise on the right at 10 columns after the position and then
//!   on the left until it fits.
//!
//! The client encoding is UTF-8 (pgdblink refuses any other).

use unicode_width::UnicodeWidthChar;

/// The screen width a line is cut to, in columns.
const DISPLAY_SIZE: usize = 60;
/// How far from the right end of the line the position is kept when cutting.
const MIN_RIGHT_CUT: usize = 10;

/// C's `atoi`, as libpq reads the position field: optional leading white space, an optional sign,
/// then digits up to the first other character; 0 when there are none (saturating, where C's
/// result is undefined).
pub(super) fn atoi(text: &str) -> i64 {
    let s = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if negative { -n } else { n }
}

/// The display width of a character as libpq counts it for the cursor: 2 for wide characters, 1 for
/// all others (libpq counts a width of 0 or less, for control and combining characters, as 1).
fn width(c: char) -> usize {
    match c.width() {
        Some(2) => 2,
        _ => 1,
    }
}

/// Appends the `LINE n: ...` line and the caret line for the 1-based character position `position`
/// in `query` to `out` (libpq's `reportErrorPosition`); appends nothing when the position is outside
/// the query.
pub(super) fn report(out: &mut String, query: &str, position: i64) {
    let Some(loc) = position
        .checked_sub(1)
        .and_then(|l| usize::try_from(l).ok())
    else {
        return;
    };
    // For each character up to the end of the line holding `loc`: its byte offset and its starting
    // screen column; one more entry for the end of that line.
    let mut offsets: Vec<(usize, usize)> = Vec::new();
    let mut line = 1usize;
    let mut begin = 0usize;
    let mut end = None;
    let mut column = 0usize;
    let mut previous = None;
    for (cno, (offset, c)) in query.char_indices().enumerate() {
        offsets.push((offset, column));
        if c == '\r' || c == '\n' {
            if cno < loc {
                if c == '\r' || previous != Some('\r') {
                    line += 1;
                }
                begin = cno + 1;
            } else {
                end = Some(cno);
                break;
            }
        }
        column += width(c);
        previous = Some(c);
    }
    let end = match end {
        Some(end) => end,
        None => {
            offsets.push((query.len(), column));
            offsets.len() - 1
        }
    };
    if loc > end {
        return;
    }
    let col = |i: usize| offsets[i].1;
    let (mut begin, mut end) = (begin, end);
    let (mut begin_cut, mut end_cut) = (false, false);
    if col(end) - col(begin) > DISPLAY_SIZE {
        if col(begin) + DISPLAY_SIZE >= col(loc) + MIN_RIGHT_CUT {
            while col(end) - col(begin) > DISPLAY_SIZE {
                end -= 1;
            }
            end_cut = true;
        } else {
            while col(loc) + MIN_RIGHT_CUT < col(end) {
                end -= 1;
                end_cut = true;
            }
            while col(end) - col(begin) > DISPLAY_SIZE {
                begin += 1;
                begin_cut = true;
            }
        }
    }
    let start = out.len();
    out.push_str("LINE ");
    out.push_str(&line.to_string());
    out.push_str(": ");
    if begin_cut {
        out.push_str("...");
    }
    // The prefix is ASCII: one column a byte.
    let indent = out.len() - start + col(loc) - col(begin);
    let text = &query[offsets[begin].0..offsets[end].0];
    out.extend(text.chars().map(|c| if c == '\t' { ' ' } else { c }));
    if end_cut {
        out.push_str("...");
    }
    out.push('\n');
    out.extend(std::iter::repeat_n(' ', indent));
    out.push_str("^\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(query: &str, position: i64) -> String {
        let mut out = String::new();
        report(&mut out, query, position);
        out
    }

    #[test]
    fn position_single_line() {
        assert_eq!(
            cursor("SELECT * FRM t", 10),
            "LINE 1: SELECT * FRM t\n                 ^\n"
        );
        assert_eq!(cursor("SELEC 1", 1), "LINE 1: SELEC 1\n        ^\n");
    }

    #[test]
    fn position_outside_the_query_shows_nothing() {
        assert_eq!(cursor("SELECT", 0), "");
        assert_eq!(cursor("SELECT", -3), "");
        assert_eq!(cursor("SELECT", 8), "");
        // Just past the end: the caret after the last character.
        assert_eq!(cursor("SELECT", 7), "LINE 1: SELECT\n              ^\n");
        assert_eq!(cursor("", 1), "LINE 1: \n        ^\n");
    }

    #[test]
    fn position_multi_line_counts_lines_and_shows_one() {
        let q = "SELECT 1,\n  2 +\n  FROM t";
        // 'F' of FROM is character 19.
        assert_eq!(cursor(q, 19), "LINE 3:   FROM t\n          ^\n");
        // On the newline itself: the line before it, caret at its end.
        assert_eq!(cursor(q, 10), "LINE 1: SELECT 1,\n                 ^\n");
    }

    #[test]
    fn position_cr_lf_counts_as_one_line_break() {
        let q = "SELECT 1,\r\n2,\r3\n\nx";
        // x is character 18: \r\n one break, \r one, \n\n two.
        assert_eq!(cursor(q, 18), "LINE 5: x\n        ^\n");
        // On the \n of \r\n: an empty line 2.
        assert_eq!(cursor(q, 11), "LINE 2: \n        ^\n");
    }

    #[test]
    fn position_tabs_show_as_one_space() {
        assert_eq!(
            cursor("SELECT\t1\tFRM", 10),
            "LINE 1: SELECT 1 FRM\n                 ^\n"
        );
    }

    #[test]
    fn position_wide_characters_take_two_columns() {
        // 'x' after two ideographs: character 13, column 14.
        let q = "SELECT '漢字' x";
        assert_eq!(
            cursor(q, 13),
            "LINE 1: SELECT '漢字' x\n                      ^\n"
        );
        // Accented letters and combining marks take one column each.
        assert_eq!(
            cursor("é e\u{301} x", 6),
            "LINE 1: é e\u{301} x\n             ^\n"
        );
    }

    #[test]
    fn position_long_line_cut_on_the_right() {
        let q = format!("SELECT {} FRM", "a".repeat(100));
        // Position 3: cut on the right only, at 60 columns.
        let out = cursor(&q, 3);
        assert_eq!(out, format!("LINE 1: {}...\n          ^\n", &q[..60]));
    }

    #[test]
    fn position_long_line_cut_on_both_sides() {
        let q = format!("SELECT {} FRM {}", "a".repeat(100), "b".repeat(100));
        // 'F' of FRM is character 109 (index 108): the line is cut 10 columns after it (at 118),
        // then on the left to 60 columns (from 58).
        let out = cursor(&q, 109);
        let line = &q[58..118];
        assert_eq!(
            out,
            format!("LINE 1: ...{line}...\n{}^\n", " ".repeat(11 + 108 - 58))
        );
        // Near the end: cut on the left only.
        let q = format!("SELECT {} FRM", "a".repeat(100));
        let out = cursor(&q, 109);
        assert_eq!(
            out,
            format!("LINE 1: ...{}\n{}^\n", &q[51..], " ".repeat(11 + 108 - 51))
        );
    }

    #[test]
    fn atoi_reads_like_c() {
        assert_eq!(atoi("42"), 42);
        assert_eq!(atoi("  7x"), 7);
        assert_eq!(atoi("-3"), -3);
        assert_eq!(atoi("+5"), 5);
        assert_eq!(atoi("x"), 0);
        assert_eq!(atoi(""), 0);
        assert_eq!(atoi("99999999999999999999999"), i64::MAX);
    }
}
