use super::*;

/// RFC 7677 section 3: user "user", password "pencil".
const RFC_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_FIRST: &[u8] =
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL: &[u8] = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL: &[u8] = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

/// The PostgreSQL 15 capture of the reference, section 4.4: user `scram_user`, password `pencil`.
const PG_NONCE: &str = "xV3yFJ/WUxMSClp1AbComiHv";
const PG_SERVER_FIRST: &[u8] =
    b"r=xV3yFJ/WUxMSClp1AbComiHv47cvuoaNJpRXgxRLTvTgGSIq,s=bE2m1hdqDMcQinW6Q5OfJw==,i=4096";
const PG_CLIENT_FINAL: &[u8] = b"c=biws,r=xV3yFJ/WUxMSClp1AbComiHv47cvuoaNJpRXgxRLTvTgGSIq,\
p=yBaOHC359dYM52Zc1ffpypveTi/BNwdJBp4uPpg72Fk=";
const PG_SERVER_FINAL: &[u8] = b"v=rmRuWbSMjZYURbcfW8suJdFJrVnkq78H0D1IkIwIKgs=";

fn pg_client() -> ScramClient {
    ScramClient::new(b"pencil", PG_NONCE, ScramLimits::default())
}

/// A client that has answered the PostgreSQL server-first message.
fn pg_client_after_first() -> ScramClient {
    let mut client = pg_client();
    client.handle_server_first(PG_SERVER_FIRST).unwrap();
    client
}

fn first_err(data: &[u8]) -> String {
    pg_client()
        .handle_server_first(data)
        .unwrap_err()
        .message()
        .to_owned()
}

fn final_err(data: &[u8]) -> String {
    pg_client_after_first()
        .handle_server_final(data)
        .unwrap_err()
        .message()
        .to_owned()
}

/// A server-first message with the PostgreSQL nonce and salt and the given tail after `i=`.
fn server_first_with_count(count: &str) -> Vec<u8> {
    format!("r={PG_NONCE}47cvuoaNJpRXgxRLTvTgGSIq,s=bE2m1hdqDMcQinW6Q5OfJw==,i={count}")
        .into_bytes()
}

// Known answers.

#[test]
fn scram_rfc7677_vector_matches() {
    let mut client = ScramClient::with_user(b"pencil", "user", RFC_NONCE, ScramLimits::default());
    assert_eq!(
        client.client_first_message(),
        b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    );
    assert_eq!(
        client.handle_server_first(RFC_SERVER_FIRST).unwrap(),
        RFC_CLIENT_FINAL
    );
    assert!(!client.is_complete());
    client.handle_server_final(RFC_SERVER_FINAL).unwrap();
    assert!(client.is_complete());
}

#[test]
fn scram_pg15_capture_matches() {
    let mut client = pg_client();
    assert_eq!(
        client.client_first_message(),
        b"n,,n=,r=xV3yFJ/WUxMSClp1AbComiHv"
    );
    assert_eq!(
        client.handle_server_first(PG_SERVER_FIRST).unwrap(),
        PG_CLIENT_FINAL
    );
    client.handle_server_final(PG_SERVER_FINAL).unwrap();
    assert!(client.is_complete());
}

#[test]
fn scram_pg15_flipped_signature_bit_rejected() {
    let good = BASE64.decode(&PG_SERVER_FINAL[2..]).unwrap();
    for bit in [0, 7, 100, 255] {
        let mut bad = good.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let message = format!("v={}", BASE64.encode(&bad));
        assert_eq!(final_err(message.as_bytes()), "incorrect server signature");
    }
}

#[test]
fn scram_user_name_escaped() {
    let client = ScramClient::with_user(b"p", "a=b,c", "n", ScramLimits::default());
    assert_eq!(client.client_first_message(), b"n,,n=a=3Db=2Cc,r=n");
}

#[test]
fn scram_password_saslprepped_before_derivation() {
    // U+2168 ROMAN NUMERAL NINE normalizes to "IX" under NFKC.
    let mut prepped = ScramClient::new("\u{2168}".as_bytes(), PG_NONCE, ScramLimits::default());
    let mut plain = ScramClient::new(b"IX", PG_NONCE, ScramLimits::default());
    assert_eq!(
        prepped.handle_server_first(PG_SERVER_FIRST).unwrap(),
        plain.handle_server_first(PG_SERVER_FIRST).unwrap()
    );
}

#[test]
fn scram_wrong_password_gives_other_proof() {
    let mut client = ScramClient::new(b"pencil2", PG_NONCE, ScramLimits::default());
    let client_final = client.handle_server_first(PG_SERVER_FIRST).unwrap();
    assert_ne!(client_final, PG_CLIENT_FINAL);
    assert_eq!(
        client
            .handle_server_final(PG_SERVER_FINAL)
            .unwrap_err()
            .message(),
        "incorrect server signature"
    );
}

#[test]
fn nonce_from_bytes_is_24_base64_chars() {
    assert_eq!(
        ScramClient::nonce_from_bytes(&[0; 18]),
        "AAAAAAAAAAAAAAAAAAAAAAAA"
    );
    let nonce = ScramClient::nonce_from_bytes(&[0xff; 18]);
    assert_eq!(nonce.len(), 24);
    assert_eq!(nonce, "////////////////////////");
}

#[test]
fn derive_keys_stored_key_is_hash_of_client_key() {
    let keys = derive_keys(b"pencil", b"salt", 2);
    let stored: [u8; KEY_LEN] = Sha256::digest(keys.client_key()).into();
    assert_eq!(keys.stored_key(), &stored);
    assert_ne!(keys.client_key(), keys.server_key());
}

// Server-first errors.

#[test]
fn server_first_nonce_mismatch_rejected() {
    let data = b"r=XV3yFJ/WUxMSClp1AbComiHv47cv,s=bE2m1hdqDMcQinW6Q5OfJw==,i=4096";
    assert_eq!(first_err(data), "invalid SCRAM response (nonce mismatch)");
}

#[test]
fn server_first_short_nonce_rejected() {
    let data = b"r=xV3yFJ,s=bE2m1hdqDMcQinW6Q5OfJw==,i=4096";
    assert_eq!(first_err(data), "invalid SCRAM response (nonce mismatch)");
}

#[test]
fn server_first_non_printable_nonce_rejected() {
    let mut data = server_first_with_count("4096");
    data[30] = 0xff;
    assert_eq!(first_err(&data), "malformed SCRAM message (invalid nonce)");
    data[30] = b' ';
    assert_eq!(first_err(&data), "malformed SCRAM message (invalid nonce)");
}

#[test]
fn server_first_attribute_order_rejected() {
    let swapped = format!("s=bE2m1hdqDMcQinW6Q5OfJw==,r={PG_NONCE}x,i=4096");
    assert_eq!(
        first_err(swapped.as_bytes()),
        "malformed SCRAM message (attribute \"r\" expected)"
    );
    let swapped = format!("r={PG_NONCE}x,i=4096,s=bE2m1hdqDMcQinW6Q5OfJw==");
    assert_eq!(
        first_err(swapped.as_bytes()),
        "malformed SCRAM message (attribute \"s\" expected)"
    );
    let missing = format!("r={PG_NONCE}x,s=bE2m1hdqDMcQinW6Q5OfJw==");
    assert_eq!(
        first_err(missing.as_bytes()),
        "malformed SCRAM message (attribute \"i\" expected)"
    );
}

#[test]
fn server_first_mandatory_extension_rejected() {
    let data = format!("m=ext,r={PG_NONCE}x,s=bE2m1hdqDMcQinW6Q5OfJw==,i=4096");
    assert_eq!(
        first_err(data.as_bytes()),
        "malformed SCRAM message (attribute \"r\" expected)"
    );
}

#[test]
fn server_first_missing_equals_rejected() {
    assert_eq!(
        first_err(b"rxyz"),
        "malformed SCRAM message (expected character \"=\" for attribute \"r\")"
    );
    let data = format!("r={PG_NONCE}x,s");
    assert_eq!(
        first_err(data.as_bytes()),
        "malformed SCRAM message (expected character \"=\" for attribute \"s\")"
    );
}

#[test]
fn server_first_invalid_salt_rejected() {
    for salt in ["!!!!", "bE2m1hdqDMcQinW6Q5OfJw=", "bE2m\u{00e9}", ""] {
        let data = format!("r={PG_NONCE}x,s={salt},i=4096");
        assert_eq!(
            first_err(data.as_bytes()),
            "malformed SCRAM message (invalid salt)",
            "salt {salt:?}"
        );
    }
}

#[test]
fn server_first_invalid_iteration_count_rejected() {
    for count in ["0", "abc", "", "-1", "+4096", " 4096", "4096x", "00", "4.5"] {
        assert_eq!(
            first_err(&server_first_with_count(count)),
            "malformed SCRAM message (invalid iteration count)",
            "count {count:?}"
        );
    }
    let mut data = server_first_with_count("4096");
    let last = data.len() - 1;
    data[last] = 0xff;
    assert_eq!(
        first_err(&data),
        "malformed SCRAM message (invalid iteration count)"
    );
}

#[test]
fn server_first_iteration_count_over_limit_rejected() {
    assert_eq!(
        first_err(&server_first_with_count("1000000000")),
        "SCRAM iteration count 1000000000 exceeds the limit of 1000000"
    );
    assert_eq!(
        first_err(&server_first_with_count("99999999999999999999999")),
        "SCRAM iteration count 99999999999999999999999 exceeds the limit of 1000000"
    );
    assert_eq!(
        first_err(&server_first_with_count("4294967296")),
        "SCRAM iteration count 4294967296 exceeds the limit of 1000000"
    );
    let mut client = ScramClient::new(
        b"pencil",
        PG_NONCE,
        ScramLimits {
            max_iterations: 4095,
        },
    );
    assert_eq!(
        client
            .handle_server_first(PG_SERVER_FIRST)
            .unwrap_err()
            .message(),
        "SCRAM iteration count 4096 exceeds the limit of 4095"
    );
}

#[test]
fn server_first_iteration_count_at_limit_accepted() {
    let mut client = ScramClient::new(
        b"pencil",
        PG_NONCE,
        ScramLimits {
            max_iterations: 4096,
        },
    );
    assert_eq!(
        client.handle_server_first(PG_SERVER_FIRST).unwrap(),
        PG_CLIENT_FINAL
    );
}

#[test]
fn server_first_garbage_at_end_rejected() {
    for tail in ["4096,x=1", "4096,,", "4096,i=4096"] {
        assert_eq!(
            first_err(&server_first_with_count(tail)),
            "malformed SCRAM message (garbage at end of server-first-message)",
            "tail {tail:?}"
        );
    }
}

#[test]
fn server_first_trailing_comma_accepted() {
    // libpq's read_attr_value consumes one comma after a value, so this passes there too.
    let mut data = PG_SERVER_FIRST.to_vec();
    data.push(b',');
    let client_final = pg_client().handle_server_first(&data).unwrap();
    assert!(client_final.starts_with(b"c=biws,r=xV3yFJ/WUxMSClp1AbComiHv47cv"));
}

#[test]
fn server_first_empty_message_rejected() {
    assert_eq!(first_err(b""), "malformed SCRAM message (empty message)");
}

#[test]
fn server_first_embedded_nul_rejected() {
    let mut data = PG_SERVER_FIRST.to_vec();
    data.insert(10, 0);
    assert_eq!(
        first_err(&data),
        "malformed SCRAM message (length mismatch)"
    );
}

#[test]
fn server_first_every_prefix_is_error_not_panic() {
    for len in 0..PG_SERVER_FIRST.len() {
        let prefix = &PG_SERVER_FIRST[..len];
        let result = pg_client().handle_server_first(prefix);
        // A prefix ending inside the count ("i=40") is a well-formed message with a smaller
        // count; everything shorter must fail.
        if prefix.starts_with(&server_first_with_count("4")) {
            assert!(result.is_ok(), "prefix {len}");
        } else {
            assert!(result.is_err(), "prefix {len}");
        }
    }
}

#[test]
fn server_first_arbitrary_bytes_never_panic() {
    let mut client_input = PG_SERVER_FIRST.to_vec();
    client_input.truncate(client_input.len() - 4);
    client_input.extend_from_slice(b"1");
    for pos in 0..client_input.len() {
        for byte in [0x00, b',', b'=', 0x80, 0xff] {
            let mut data = client_input.clone();
            data[pos] = byte;
            let _ = pg_client().handle_server_first(&data);
        }
    }
}

#[test]
fn server_first_called_twice_rejected() {
    let mut client = pg_client_after_first();
    assert_eq!(
        client
            .handle_server_first(PG_SERVER_FIRST)
            .unwrap_err()
            .message(),
        "invalid SCRAM exchange state"
    );
    // The exchange itself is unharmed by the misuse.
    client.handle_server_final(PG_SERVER_FINAL).unwrap();
}

#[test]
fn server_first_error_is_sticky() {
    let mut client = pg_client();
    let error = client.handle_server_first(b"").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Auth);
    assert_eq!(
        client.handle_server_first(PG_SERVER_FIRST).unwrap_err(),
        error
    );
    assert_eq!(
        client.handle_server_final(PG_SERVER_FINAL).unwrap_err(),
        error
    );
    assert!(!client.is_complete());
}

// Server-final errors.

#[test]
fn server_final_error_attribute_reported() {
    assert_eq!(
        final_err(b"e=other-error"),
        "error received from server in SCRAM exchange: other-error"
    );
    assert_eq!(
        final_err(b"e=invalid-proof"),
        "error received from server in SCRAM exchange: invalid-proof"
    );
    assert_eq!(
        final_err(b"e=bad\xffbytes"),
        "error received from server in SCRAM exchange: bad\u{FFFD}bytes"
    );
}

#[test]
fn server_final_error_without_equals_rejected() {
    assert_eq!(
        final_err(b"eek"),
        "malformed SCRAM message (expected character \"=\" for attribute \"e\")"
    );
}

#[test]
fn server_final_wrong_attribute_rejected() {
    assert_eq!(
        final_err(b"x=abc"),
        "malformed SCRAM message (attribute \"v\" expected)"
    );
}

#[test]
fn server_final_wrong_length_signature_rejected() {
    let short = format!("v={}", BASE64.encode([0u8; 31]));
    let long = format!("v={}", BASE64.encode([0u8; 33]));
    for data in [short.as_str(), long.as_str(), "v=", "v=!!!!", "v=\u{00e9}"] {
        assert_eq!(
            final_err(data.as_bytes()),
            "malformed SCRAM message (invalid server signature)",
            "data {data:?}"
        );
    }
}

#[test]
fn server_final_garbage_at_end_rejected() {
    let mut data = PG_SERVER_FINAL.to_vec();
    data.extend_from_slice(b",x=1");
    assert_eq!(
        final_err(&data),
        "malformed SCRAM message (garbage at end of server-final-message)"
    );
}

#[test]
fn server_final_empty_message_rejected() {
    assert_eq!(final_err(b""), "malformed SCRAM message (empty message)");
}

#[test]
fn server_final_embedded_nul_rejected() {
    let mut data = PG_SERVER_FINAL.to_vec();
    data.push(0);
    assert_eq!(
        final_err(&data),
        "malformed SCRAM message (length mismatch)"
    );
}

#[test]
fn server_final_before_server_first_rejected() {
    let mut client = pg_client();
    assert_eq!(
        client
            .handle_server_final(PG_SERVER_FINAL)
            .unwrap_err()
            .message(),
        "AuthenticationSASLFinal received from server, but SASL authentication was not completed"
    );
    assert!(!client.is_complete());
    assert!(client.handle_server_first(PG_SERVER_FIRST).is_err());
}

#[test]
fn server_final_called_twice_rejected() {
    let mut client = pg_client_after_first();
    client.handle_server_final(PG_SERVER_FINAL).unwrap();
    assert_eq!(
        client
            .handle_server_final(PG_SERVER_FINAL)
            .unwrap_err()
            .message(),
        "invalid SCRAM exchange state"
    );
    assert!(client.is_complete());
}

#[test]
fn server_final_bad_signature_is_sticky() {
    let mut client = pg_client_after_first();
    let error = client
        .handle_server_final(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .unwrap_err();
    assert_eq!(error.message(), "incorrect server signature");
    assert_eq!(
        client.handle_server_final(PG_SERVER_FINAL).unwrap_err(),
        error
    );
    assert!(!client.is_complete());
}

// Secrets stay out of Debug.

#[test]
fn scram_client_debug_hides_secrets() {
    let client = ScramClient::new(b"pencil", PG_NONCE, ScramLimits::default());
    let text = format!("{client:?}");
    assert!(!text.contains("pencil"), "{text}");
    assert!(!text.contains("112"), "{text}"); // b'p' as a byte list
    let client = pg_client_after_first();
    let text = format!("{client:?}");
    assert!(text.contains("ProofSent"), "{text}");
}

#[test]
fn scram_keys_debug_hides_keys() {
    let keys = derive_keys(b"pencil", b"salt", 1);
    assert_eq!(format!("{keys:?}"), "ScramKeys { .. }");
}

// The key cache.

#[test]
fn key_cache_gives_same_messages() {
    let mut cache = ScramKeyCache::new(4);
    for _ in 0..3 {
        let mut client = pg_client();
        assert_eq!(
            client
                .handle_server_first_cached(PG_SERVER_FIRST, &mut cache)
                .unwrap(),
            PG_CLIENT_FINAL
        );
        client.handle_server_final(PG_SERVER_FINAL).unwrap();
        assert_eq!(cache.len(), 1);
    }
}

#[test]
fn key_cache_hit_returns_cached_keys() {
    let mut cache = ScramKeyCache::new(2);
    let first = cache.get_or_derive(b"pencil", b"salt", 1);
    let again = cache.get_or_derive(b"pencil", b"salt", 1);
    assert_eq!(first.client_key(), again.client_key());
    assert_eq!(cache.len(), 1);
    // Each part of the key matters.
    cache.get_or_derive(b"pencil", b"salt", 2);
    cache.get_or_derive(b"pencil", b"pepper", 1);
    cache.get_or_derive(b"crayon", b"salt", 1);
    assert_eq!(cache.len(), 2);
}

#[test]
fn key_cache_evicts_least_recently_used() {
    let mut cache = ScramKeyCache::new(2);
    cache.get_or_derive(b"a", b"salt", 1);
    cache.get_or_derive(b"b", b"salt", 1);
    cache.get_or_derive(b"a", b"salt", 1); // "a" is now the most recent
    cache.get_or_derive(b"c", b"salt", 1); // evicts "b"
    assert_eq!(cache.len(), 2);
    let hashes: Vec<[u8; KEY_LEN]> = cache.entries.iter().map(|e| e.password_hash).collect();
    assert_eq!(
        hashes,
        vec![
            <[u8; KEY_LEN]>::from(Sha256::digest(b"a")),
            Sha256::digest(b"c").into()
        ]
    );
}

#[test]
fn key_cache_stores_no_password() {
    let mut cache = ScramKeyCache::new(1);
    cache.get_or_derive(b"pencil", b"salt", 1);
    let entry = &cache.entries[0];
    assert_eq!(
        entry.password_hash,
        <[u8; KEY_LEN]>::from(Sha256::digest(b"pencil"))
    );
    assert_eq!(
        format!("{cache:?}"),
        "ScramKeyCache { capacity: 1, len: 1 }"
    );
}

#[test]
fn key_cache_zero_capacity_stores_nothing() {
    let mut cache = ScramKeyCache::new(0);
    let mut client = pg_client();
    assert_eq!(
        client
            .handle_server_first_cached(PG_SERVER_FIRST, &mut cache)
            .unwrap(),
        PG_CLIENT_FINAL
    );
    assert!(cache.is_empty());
    assert_eq!(cache.capacity(), 0);
}

#[test]
fn key_cache_limit_checked_before_lookup() {
    let mut cache = ScramKeyCache::new(1);
    let mut client = pg_client();
    client
        .handle_server_first_cached(PG_SERVER_FIRST, &mut cache)
        .unwrap();
    let mut strict = ScramClient::new(
        b"pencil",
        PG_NONCE,
        ScramLimits {
            max_iterations: 100,
        },
    );
    assert!(
        strict
            .handle_server_first_cached(PG_SERVER_FIRST, &mut cache)
            .is_err()
    );
    cache.clear();
    assert!(cache.is_empty());
}

// Mechanism selection.

fn choose(offered: &[&str], cb: ChannelBinding, tls: bool) -> Result<&'static str, String> {
    choose_sasl_mechanism(offered.iter().map(|m| m.as_bytes()), cb, tls)
        .map_err(|e| e.message().to_owned())
}

#[test]
fn choose_sasl_mechanism_scram_selected() {
    for cb in [ChannelBinding::Disable, ChannelBinding::Prefer] {
        assert_eq!(choose(&["SCRAM-SHA-256"], cb, false), Ok(SCRAM_SHA_256));
        assert_eq!(
            choose(&["OTHER", "SCRAM-SHA-256", ""], cb, false),
            Ok(SCRAM_SHA_256)
        );
    }
}

#[test]
fn choose_sasl_mechanism_plus_without_tls_rejected() {
    for cb in [ChannelBinding::Disable, ChannelBinding::Prefer] {
        for offered in [
            &["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"][..],
            &["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"][..],
        ] {
            assert_eq!(
                choose(offered, cb, false),
                Err(
                    "server offered SCRAM-SHA-256-PLUS authentication over a non-SSL connection"
                        .to_owned()
                )
            );
        }
    }
}

#[test]
fn choose_sasl_mechanism_require_without_tls_rejected() {
    assert_eq!(
        choose(&["SCRAM-SHA-256"], ChannelBinding::Require, false),
        Err("channel binding required, but SSL not in use".to_owned())
    );
    assert_eq!(
        choose(&["SCRAM-SHA-256-PLUS"], ChannelBinding::Require, false),
        Err("channel binding required, but SSL not in use".to_owned())
    );
}

#[test]
fn choose_sasl_mechanism_require_without_plus_rejected() {
    assert_eq!(
        choose(&["SCRAM-SHA-256"], ChannelBinding::Require, true),
        Err(
            "channel binding is required, but server did not offer an authentication method \
             that supports channel binding"
                .to_owned()
        )
    );
}

#[test]
fn choose_sasl_mechanism_plus_over_tls_selected() {
    for cb in [ChannelBinding::Prefer, ChannelBinding::Require] {
        for offered in [
            &["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"][..],
            &["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"][..],
            &["SCRAM-SHA-256-PLUS"][..],
        ] {
            assert_eq!(choose(offered, cb, true), Ok(SCRAM_SHA_256_PLUS));
        }
    }
    // channel_binding=disable passes PLUS over.
    assert_eq!(
        choose(
            &["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"],
            ChannelBinding::Disable,
            true
        ),
        Ok(SCRAM_SHA_256)
    );
}

#[test]
fn choose_sasl_mechanism_none_supported_rejected() {
    let text = Err("none of the server's SASL authentication mechanisms are supported".to_owned());
    assert_eq!(choose(&[], ChannelBinding::Prefer, false), text);
    assert_eq!(
        choose(&["OAUTHBEARER"], ChannelBinding::Prefer, false),
        text
    );
    assert_eq!(
        choose(&["scram-sha-256"], ChannelBinding::Prefer, false),
        text
    );
    // The empty name ends the list.
    assert_eq!(
        choose(&["", "SCRAM-SHA-256"], ChannelBinding::Prefer, false),
        text
    );
    assert_eq!(
        choose(&["SCRAM-SHA-256-PLUS"], ChannelBinding::Disable, true),
        text
    );
}

#[test]
fn choose_sasl_mechanism_error_kind_is_auth() {
    let error = choose_sasl_mechanism([], ChannelBinding::Prefer, false).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Auth);
}

fn select(
    offered: &[&str],
    cb: ChannelBinding,
    tls: bool,
    end_point: Option<&[u8]>,
) -> Result<ScramBinding, String> {
    select_sasl_mechanism(offered.iter().map(|m| m.as_bytes()), cb, tls, end_point)
        .map_err(|e| e.message().to_owned())
}

const BOTH: &[&str] = &["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"];
const END_POINT: [u8; 32] = [0xab; 32];

#[test]
fn select_sasl_mechanism_gs2_flag_like_libpq() {
    let plus = Ok(ScramBinding::TlsServerEndPoint(END_POINT.to_vec()));
    // TLS, PLUS offered: p=, unless binding is disabled (then n,,).
    for cb in [ChannelBinding::Prefer, ChannelBinding::Require] {
        assert_eq!(select(BOTH, cb, true, Some(&END_POINT)), plus);
    }
    assert_eq!(
        select(BOTH, ChannelBinding::Disable, true, Some(&END_POINT)),
        Ok(ScramBinding::Unsupported)
    );
    // TLS, only SCRAM-SHA-256 offered: y,, (the client could bind), n,, when disabled.
    assert_eq!(
        select(
            &["SCRAM-SHA-256"],
            ChannelBinding::Prefer,
            true,
            Some(&END_POINT)
        ),
        Ok(ScramBinding::NotOffered)
    );
    assert_eq!(
        select(
            &["SCRAM-SHA-256"],
            ChannelBinding::Disable,
            true,
            Some(&END_POINT)
        ),
        Ok(ScramBinding::Unsupported)
    );
    // No TLS: n,,.
    for cb in [ChannelBinding::Prefer, ChannelBinding::Disable] {
        assert_eq!(
            select(&["SCRAM-SHA-256"], cb, false, None),
            Ok(ScramBinding::Unsupported)
        );
    }
}

#[test]
fn select_sasl_mechanism_refusals_like_libpq() {
    assert_eq!(
        select(BOTH, ChannelBinding::Prefer, false, None),
        Err("server offered SCRAM-SHA-256-PLUS authentication over a non-SSL connection".into())
    );
    assert_eq!(
        select(&["SCRAM-SHA-256"], ChannelBinding::Require, false, None),
        Err("channel binding required, but SSL not in use".into())
    );
    assert_eq!(
        select(
            &["SCRAM-SHA-256"],
            ChannelBinding::Require,
            true,
            Some(&END_POINT)
        ),
        Err(
            "channel binding is required, but server did not offer an authentication method \
             that supports channel binding"
                .into()
        )
    );
}

#[test]
fn select_sasl_mechanism_without_end_point_data() {
    // A certificate whose signature names no hash (Ed25519): prefer authenticates without binding
    // (n,,, which the server accepts), require fails before any secret is sent.
    assert_eq!(
        select(BOTH, ChannelBinding::Prefer, true, None),
        Ok(ScramBinding::Unsupported)
    );
    assert_eq!(
        select(BOTH, ChannelBinding::Require, true, None),
        Err("channel binding is required, but client does not support it".into())
    );
    assert_eq!(
        select(&["SCRAM-SHA-256-PLUS"], ChannelBinding::Prefer, true, None),
        Err("none of the server's SASL authentication mechanisms are supported".into())
    );
}

#[test]
fn scram_binding_headers_and_cbind_input() {
    assert_eq!(ScramBinding::Unsupported.gs2_header(), "n,,");
    assert_eq!(ScramBinding::Unsupported.cbind_input(), "biws");
    assert_eq!(ScramBinding::NotOffered.gs2_header(), "y,,");
    assert_eq!(ScramBinding::NotOffered.cbind_input(), "eSws");
    let plus = ScramBinding::TlsServerEndPoint(vec![1, 2, 3]);
    assert_eq!(plus.gs2_header(), "p=tls-server-end-point,,");
    assert_eq!(
        BASE64.decode(plus.cbind_input()).unwrap(),
        b"p=tls-server-end-point,,\x01\x02\x03"
    );
    assert_eq!(plus.mechanism(), SCRAM_SHA_256_PLUS);
    assert_eq!(ScramBinding::NotOffered.mechanism(), SCRAM_SHA_256);
}

/// SCRAM-SHA-256-PLUS over the PostgreSQL 15 capture's server-first, with the binding data
/// 00 01 .. 1f; the expected messages computed independently (Python hashlib/hmac, RFC 5802).
const PLUS_CLIENT_FINAL: &[u8] =
    b"c=cD10bHMtc2VydmVyLWVuZC1wb2ludCwsAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,\
r=xV3yFJ/WUxMSClp1AbComiHv47cvuoaNJpRXgxRLTvTgGSIq,p=oJG+1UlnKhtLidRTHHz5qkzzQGx7cCsn1ngvvZrkIng=";
const PLUS_SERVER_FINAL: &[u8] = b"v=p5/oJ92FfBXjDLri1+3RlgYRFpBxuP1vitKrD3cZ3os=";

#[test]
fn scram_plus_known_vector() {
    let end_point: Vec<u8> = (0..32).collect();
    let mut client = pg_client().with_binding(ScramBinding::TlsServerEndPoint(end_point));
    assert_eq!(
        client.client_first_message(),
        b"p=tls-server-end-point,,n=,r=xV3yFJ/WUxMSClp1AbComiHv"
    );
    assert_eq!(
        client.handle_server_first(PG_SERVER_FIRST).unwrap(),
        PLUS_CLIENT_FINAL
    );
    assert!(!client.is_channel_bound());
    // The plain exchange's signature does not verify: the binding data is in the AuthMessage.
    let mut other = pg_client().with_binding(ScramBinding::TlsServerEndPoint((0..32).collect()));
    other.handle_server_first(PG_SERVER_FIRST).unwrap();
    assert_eq!(
        other
            .handle_server_final(PG_SERVER_FINAL)
            .unwrap_err()
            .message(),
        "incorrect server signature"
    );
    client.handle_server_final(PLUS_SERVER_FINAL).unwrap();
    assert!(client.is_complete() && client.is_channel_bound());
}

#[test]
fn scram_y_flag_known_vector() {
    let mut client = pg_client().with_binding(ScramBinding::NotOffered);
    assert_eq!(
        client.client_first_message(),
        b"y,,n=,r=xV3yFJ/WUxMSClp1AbComiHv"
    );
    assert_eq!(
        client.handle_server_first(PG_SERVER_FIRST).unwrap(),
        &b"c=eSws,r=xV3yFJ/WUxMSClp1AbComiHv47cvuoaNJpRXgxRLTvTgGSIq,\
p=GAldW+pALdvekPXJp2FJTd/T/vAHD5lhRIZsBjY+lxA="[..]
    );
    client
        .handle_server_final(b"v=k0+ge/HAweoCZ8dUF7krrxM/uhqoWpZNviFQJUlp1+E=")
        .unwrap();
    assert!(client.is_complete() && !client.is_channel_bound());
}

#[test]
fn channel_binding_default_is_prefer() {
    assert_eq!(ChannelBinding::default(), ChannelBinding::Prefer);
}

#[test]
fn scram_limits_default_is_one_million() {
    assert_eq!(ScramLimits::default().max_iterations, 1_000_000);
}

// Differential checks against rust-postgres' `postgres-protocol` (a dev-dependency).

/// A fixed-seed xorshift generator: reproducible test inputs, no randomness in the library.
struct TestRng(u64);

impl TestRng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A password mixing ASCII, characters SASLprep maps or normalizes, prohibited characters and
/// invalid UTF-8.
fn test_password(rng: &mut TestRng) -> Vec<u8> {
    const PIECES: &[&[u8]] = &[
        b"a",
        b"Z",
        b"9",
        b" ",
        b",",
        b"=",
        b"\x07",
        "\u{00A0}".as_bytes(),
        "\u{00AD}".as_bytes(),
        "\u{2168}".as_bytes(),
        "\u{00E4}".as_bytes(),
        "\u{05D0}".as_bytes(),
        "\u{E000}".as_bytes(),
        "\u{FB01}".as_bytes(),
        b"\xff",
        b"\xc3",
    ];
    let len = rng.below(8);
    (0..len)
        .flat_map(|_| PIECES[rng.below(PIECES.len())].iter().copied())
        .collect()
}

/// The rest of a SCRAM exchange between postgres-protocol (`theirs`) and `ours` after the same
/// client-first message (its GS2 header `header_len` bytes): a random salt and iteration count,
/// the same client-final from both, and the server signature both accept.
fn finish_exchange(
    rng: &mut TestRng,
    round: usize,
    password: &[u8],
    header_len: usize,
    theirs: &mut postgres_protocol::authentication::sasl::ScramSha256,
    ours: &mut ScramClient,
) {
    let their_first = ours.client_first_message();
    let nonce = std::str::from_utf8(&their_first[header_len..])
        .unwrap()
        .strip_prefix("n=,r=")
        .unwrap();
    let salt: Vec<u8> = (0..1 + rng.below(24)).map(|_| rng.next() as u8).collect();
    let iterations = 1 + rng.below(40) as u32;
    let server_first = format!(
        "r={nonce}{},s={},i={iterations}",
        ScramClient::nonce_from_bytes(&[round as u8; 18]),
        BASE64.encode(&salt)
    );
    theirs.update(server_first.as_bytes()).unwrap();
    let client_final = ours.handle_server_first(server_first.as_bytes()).unwrap();
    assert_eq!(
        client_final,
        theirs.message(),
        "round {round}, password {password:?}"
    );

    // The server signature, from the keys of the password as SASLprep leaves it.
    let keys = derive_keys(&saslprep_password(password), &salt, iterations);
    let without_proof = &client_final[..client_final.len() - ",p=".len() - 44];
    let auth_message = [
        &their_first[header_len..],
        b",",
        server_first.as_bytes(),
        b",",
        without_proof,
    ];
    let signature = hmac_sha256(keys.server_key(), &auth_message);
    let server_final = format!("v={}", BASE64.encode(signature));
    theirs.finish(server_final.as_bytes()).unwrap();
    ours.handle_server_final(server_final.as_bytes()).unwrap();
    assert!(ours.is_complete());
}

#[test]
fn scram_matches_postgres_protocol() {
    use postgres_protocol::authentication::sasl;

    let mut rng = TestRng(0x9e37_79b9_7f4a_7c15);
    for round in 0..40 {
        let password = test_password(&mut rng);
        let mut theirs = sasl::ScramSha256::new(&password, sasl::ChannelBinding::unsupported());
        let their_first = theirs.message().to_vec();
        let nonce = std::str::from_utf8(&their_first)
            .unwrap()
            .strip_prefix("n,,n=,r=")
            .unwrap()
            .to_owned();
        let mut ours = ScramClient::new(&password, &nonce, ScramLimits::default());
        assert_eq!(ours.client_first_message(), their_first);

        finish_exchange(&mut rng, round, &password, 3, &mut theirs, &mut ours);
    }
}

#[test]
fn scram_plus_matches_postgres_protocol() {
    use postgres_protocol::authentication::sasl;

    let mut rng = TestRng(0x6a09_e667_f3bc_c908);
    for round in 0..24 {
        let password = test_password(&mut rng);
        // SHA-256, SHA-384 and SHA-512 sized binding data, and the y flag.
        let (theirs_binding, ours_binding) = match round % 4 {
            3 => (
                sasl::ChannelBinding::unrequested(),
                ScramBinding::NotOffered,
            ),
            n => {
                let len = [32, 48, 64][n];
                let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                (
                    sasl::ChannelBinding::tls_server_end_point(data.clone()),
                    ScramBinding::TlsServerEndPoint(data),
                )
            }
        };
        let header = ours_binding.gs2_header();
        let mut theirs = sasl::ScramSha256::new(&password, theirs_binding);
        let their_first = theirs.message().to_vec();
        let nonce = std::str::from_utf8(&their_first)
            .unwrap()
            .strip_prefix(header)
            .and_then(|rest| rest.strip_prefix("n=,r="))
            .unwrap()
            .to_owned();
        let mut ours =
            ScramClient::new(&password, &nonce, ScramLimits::default()).with_binding(ours_binding);
        assert_eq!(ours.client_first_message(), their_first);

        finish_exchange(
            &mut rng,
            round,
            &password,
            header.len(),
            &mut theirs,
            &mut ours,
        );
    }
}

#[test]
fn md5_password_matches_postgres_protocol() {
    let mut rng = TestRng(0x2545_f491_4f6c_dd1d);
    for _ in 0..50 {
        let user = test_password(&mut rng);
        let password = test_password(&mut rng);
        let salt = (rng.next() as u32).to_be_bytes();
        assert_eq!(
            crate::auth::md5_password(&user, &password, salt),
            postgres_protocol::authentication::md5_hash(&user, &password, salt)
        );
    }
}

#[test]
fn scram_types_are_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<ScramClient>();
    check::<ScramKeys>();
    check::<ScramKeyCache>();
}
