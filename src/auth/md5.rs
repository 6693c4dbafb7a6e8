//! The `md5` password method (`AuthenticationMD5Password`, request code 5).

use md5::{Digest, Md5};
use zeroize::Zeroize;

/// Lower-case hexadecimal digits of a 16-byte MD5 digest.
fn hex_digest(digest: &[u8]) -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (i, byte) in digest.iter().take(16).enumerate() {
        out[2 * i] = HEX[usize::from(byte >> 4)];
        out[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
    }
    out
}

/// The response to an MD5 password request: `"md5" + hex(md5(hex(md5(password ++ user)) ++ salt))`.
///
/// `user` is the startup-packet user name and `salt` the four bytes of the
/// `AuthenticationMD5Password` message. The result is always 35 ASCII characters; the caller sends it
/// in a `PasswordMessage` followed by a NUL, as libpq's `pg_password_sendauth` does.
///
/// ```
/// use pgdblink::auth::md5_password;
/// let answer = md5_password(b"md5_user", b"pencil", [0xe8, 0x85, 0xe7, 0x75]);
/// assert_eq!(answer, "md5f3a0967f60d9dac4597911ea1abdd4be");
/// ```
pub fn md5_password(user: &[u8], password: &[u8], salt: [u8; 4]) -> String {
    // md5(password ++ user) is what the server stores: as good as the password, so wiped after use.
    let mut inner: [u8; 16] = Md5::new()
        .chain_update(password)
        .chain_update(user)
        .finalize()
        .into();
    let mut inner_hex = hex_digest(&inner);
    let outer = Md5::new()
        .chain_update(inner_hex)
        .chain_update(salt)
        .finalize();
    inner.zeroize();
    inner_hex.zeroize();
    let mut out = String::with_capacity(35);
    out.push_str("md5");
    // hex_digest only yields ASCII hex digits.
    out.extend(hex_digest(&outer).iter().map(|&b| char::from(b)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_password_matches_pg15_capture() {
        assert_eq!(
            md5_password(b"md5_user", b"pencil", [0xe8, 0x85, 0xe7, 0x75]),
            "md5f3a0967f60d9dac4597911ea1abdd4be"
        );
    }

    #[test]
    fn md5_password_is_35_ascii_chars() {
        let answer = md5_password(b"", b"", [0, 0, 0, 0]);
        assert_eq!(answer.len(), 35);
        assert!(answer.starts_with("md5"));
        assert!(
            answer[3..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn md5_password_depends_on_salt() {
        assert_ne!(
            md5_password(b"u", b"p", [1, 2, 3, 4]),
            md5_password(b"u", b"p", [1, 2, 3, 5])
        );
    }
}
