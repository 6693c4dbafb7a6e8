//! SASLprep (RFC 4013) of SCRAM passwords, with PostgreSQL's fallbacks.

use std::borrow::Cow;

/// Normalizes a password with SASLprep the way PostgreSQL's `pg_saslprep` is used by libpq.
///
/// * A pure-ASCII password is returned unchanged (PostgreSQL's quick check; this includes ASCII
///   control characters, which RFC 4013 would otherwise prohibit).
/// * Otherwise the password must be valid UTF-8 and pass RFC 4013: non-ASCII spaces map to U+0020,
///   "commonly mapped to nothing" characters are removed, the result is NFKC-normalized, and
///   prohibited, unassigned or badly bidirectional text is refused.
/// * When preparation fails (invalid UTF-8, a prohibited character), the raw bytes are used as they
///   are, as libpq's `scram_init` does and as the server does when it stores the verifier.
///
/// The result borrows from `password` unless SASLprep changed it.
pub fn saslprep_password(password: &[u8]) -> Cow<'_, [u8]> {
    if password.is_ascii() {
        return Cow::Borrowed(password);
    }
    let Ok(text) = std::str::from_utf8(password) else {
        return Cow::Borrowed(password);
    };
    match stringprep::saslprep(text) {
        Ok(Cow::Borrowed(prepared)) => Cow::Borrowed(prepared.as_bytes()),
        Ok(Cow::Owned(prepared)) => Cow::Owned(prepared.into_bytes()),
        Err(_) => Cow::Borrowed(password),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prep(s: &str) -> Vec<u8> {
        saslprep_password(s.as_bytes()).into_owned()
    }

    #[test]
    fn saslprep_ascii_unchanged() {
        assert!(matches!(
            saslprep_password(b"pencil"),
            Cow::Borrowed(b"pencil")
        ));
        assert_eq!(prep("p a=s,s"), b"p a=s,s");
    }

    #[test]
    fn saslprep_ascii_control_kept() {
        // PostgreSQL's ASCII quick check runs before the prohibited-output check.
        assert_eq!(prep("a\u{0007}b"), b"a\x07b");
    }

    #[test]
    fn saslprep_non_ascii_space_mapped() {
        assert_eq!(prep("a\u{00A0}b"), b"a b");
        assert_eq!(prep("\u{2003}"), b" ");
    }

    #[test]
    fn saslprep_mapped_to_nothing_removed() {
        assert_eq!(prep("pen\u{00AD}cil"), b"pencil");
        assert_eq!(prep("\u{00AD}"), b"");
    }

    #[test]
    fn saslprep_nfkc_applied() {
        assert_eq!(prep("\u{2168}"), b"IX");
        assert_eq!(prep("\u{FB01}"), b"fi");
    }

    #[test]
    fn saslprep_non_ascii_unchanged_when_already_prepared() {
        assert_eq!(prep("p\u{00E4}ss"), "p\u{00E4}ss".as_bytes());
    }

    #[test]
    fn saslprep_prohibited_keeps_raw_bytes() {
        // U+0007 in a non-ASCII string is prohibited (C.2.1), so the raw bytes are used.
        let raw = "\u{00E4}\u{0007}";
        assert_eq!(prep(raw), raw.as_bytes());
        // Private use (C.3).
        let raw = "x\u{E000}";
        assert_eq!(prep(raw), raw.as_bytes());
        // A prohibited character after mapping: nothing is mapped in the raw result.
        let raw = "\u{00A0}\u{0007}";
        assert_eq!(prep(raw), raw.as_bytes());
    }

    #[test]
    fn saslprep_bidi_violation_keeps_raw_bytes() {
        // RandALCat (Hebrew alef) mixed with LCat.
        let raw = "\u{05D0}a";
        assert_eq!(prep(raw), raw.as_bytes());
    }

    #[test]
    fn saslprep_invalid_utf8_keeps_raw_bytes() {
        let raw: &[u8] = b"pen\xffcil\xc3";
        assert_eq!(saslprep_password(raw).as_ref(), raw);
    }
}
