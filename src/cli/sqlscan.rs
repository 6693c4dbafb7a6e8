//! Where a statement typed at the shell ends: at a `;` outside quotes, dollar quotes and comments, as
//! psql's lexer decides.

/// Lexer state at the end of the text scanned so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Normal,
    /// In '...'; `true` for an E'...' string (backslash escapes).
    Quote(bool),
    /// In "..." (an identifier).
    Ident,
    /// In /* ... */, nested this deep.
    Block(u32),
    /// In -- ... up to the end of the line.
    Line,
}

/// Whether `text` is a complete command: its last significant character (outside comments) is a `;`
/// that is not inside a quote, a dollar quote or a comment.
pub fn complete(text: &str) -> bool {
    let b = text.as_bytes();
    let mut state = State::Normal;
    let mut dollar: Option<&[u8]> = None;
    let mut last_semicolon = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if let Some(tag) = dollar {
            if b[i..].starts_with(tag) {
                i += tag.len();
                dollar = None;
            } else {
                i += 1;
            }
            continue;
        }
        match state {
            State::Normal => {
                match c {
                    b'\'' => {
                        let e = i > 0
                            && matches!(b[i - 1], b'e' | b'E')
                            && (i < 2 || !is_ident(b[i - 2]));
                        state = State::Quote(e);
                    }
                    b'"' => state = State::Ident,
                    b'-' if b.get(i + 1) == Some(&b'-') => {
                        state = State::Line;
                        i += 1;
                    }
                    b'/' if b.get(i + 1) == Some(&b'*') => {
                        state = State::Block(1);
                        i += 1;
                    }
                    b'$' if i == 0 || !is_ident(b[i - 1]) => {
                        if let Some(len) = dollar_tag(&b[i..]) {
                            dollar = Some(&b[i..i + len]);
                            i += len;
                            last_semicolon = false;
                            continue;
                        }
                    }
                    _ => {}
                }
                if !c.is_ascii_whitespace() && state == State::Normal {
                    last_semicolon = c == b';';
                } else if matches!(state, State::Quote(_) | State::Ident) {
                    last_semicolon = false;
                }
            }
            State::Quote(e) => {
                if e && c == b'\\' {
                    i += 1;
                } else if c == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        i += 1;
                    } else {
                        state = State::Normal;
                    }
                }
            }
            State::Ident => {
                if c == b'"' {
                    state = State::Normal;
                }
            }
            State::Block(depth) => {
                if c == b'*' && b.get(i + 1) == Some(&b'/') {
                    state = if depth == 1 {
                        State::Normal
                    } else {
                        State::Block(depth - 1)
                    };
                    i += 1;
                } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
                    state = State::Block(depth + 1);
                    i += 1;
                }
            }
            State::Line => {
                if c == b'\n' {
                    state = State::Normal;
                }
            }
        }
        i += 1;
    }
    dollar.is_none() && matches!(state, State::Normal | State::Line) && last_semicolon
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// The length of a dollar-quote opening tag (`$$`, `$tag$`) at the start of `b`; `None` for `$1` and
/// other dollars.
fn dollar_tag(b: &[u8]) -> Option<usize> {
    let end = b[1..].iter().position(|&c| c == b'$')? + 1;
    let tag = &b[1..end];
    let valid = tag.first().is_none_or(|c| !c.is_ascii_digit()) && tag.iter().all(|&c| is_ident(c));
    valid.then_some(end + 1)
}

#[cfg(test)]
mod tests {
    use super::complete;

    #[test]
    fn semicolon_ends_only_outside_quotes_and_comments() {
        assert!(complete("send a SELECT 1;"));
        assert!(complete("send a SELECT 1;  -- done"));
        assert!(complete("send a SELECT 1; SELECT 2;\n"));
        assert!(!complete("send a SELECT 1"));
        assert!(!complete("send a SELECT ';"));
        assert!(complete("send a SELECT ';';"));
        assert!(!complete("send a SELECT 'it''s;"));
        assert!(complete("send a SELECT E'\\';';"));
        assert!(!complete("send a SELECT \"a;"));
        assert!(!complete("send a SELECT 1 /* ; */"));
        assert!(complete("send a SELECT 1 /* /* ; */ */;"));
        assert!(!complete("send a SELECT 1 -- ;"));
        assert!(complete("send a SELECT 1; /* done */"));
        assert!(!complete("send a DO $$ BEGIN PERFORM 1;"));
        assert!(complete("send a DO $$ BEGIN PERFORM 1; END $$;"));
        assert!(!complete("send a DO $x$ a $$; $x"));
        assert!(complete("send a DO $x$ a $$; $x$;"));
        assert!(complete("send a SELECT $1::int;"));
        assert!(!complete("send a SELECT 1; SELECT 2"));
    }
}
