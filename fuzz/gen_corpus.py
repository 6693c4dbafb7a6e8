#!/usr/bin/env python3
"""Writes the seed corpus of the backend_decode fuzz target: realistic server streams and malformed
samples, one file each. Run from `fuzz/`: `python3 gen_corpus.py`. The files are committed."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "backend_decode")


def m(tag, body=b""):
    return tag + struct.pack(">I", len(body) + 4) + body


def i16(n):
    return struct.pack(">h", n)


def i32(n):
    return struct.pack(">i", n)


def u32(n):
    return struct.pack(">I", n)


def auth(code, payload=b""):
    return m(b"R", u32(code) + payload)


def ps(name, value):
    return m(b"S", name + b"\0" + value + b"\0")


def fd(name, table=0, col=0, typ=25, size=-1, typmod=-1, fmt=0):
    return name + b"\0" + u32(table) + i16(col) + u32(typ) + i16(size) + i32(typmod) + i16(fmt)


def rowdesc(*fields):
    return m(b"T", i16(len(fields)) + b"".join(fields))


def row(*vals):
    body = i16(len(vals))
    for v in vals:
        body += i32(-1) if v is None else i32(len(v)) + v
    return m(b"D", body)


def err(tag=b"E", **fields):
    body = b"".join(k.encode() + v + b"\0" for k, v in fields.items())
    return m(tag, body + b"\0")


def cc(tag):
    return m(b"C", tag + b"\0")


def z(s=b"I"):
    return m(b"Z", s)


PARAMS = [
    (b"application_name", b"dbl_app"), (b"client_encoding", b"UTF8"), (b"DateStyle", b"ISO, MDY"),
    (b"default_transaction_read_only", b"off"), (b"in_hot_standby", b"off"),
    (b"integer_datetimes", b"on"), (b"IntervalStyle", b"postgres"), (b"is_superuser", b"on"),
    (b"server_encoding", b"UTF8"), (b"server_version", b"15.18"),
    (b"session_authorization", b"alice"), (b"standard_conforming_strings", b"on"),
    (b"TimeZone", b"UTC"),
]
AFTER_AUTH = b"".join(ps(n, v) for n, v in PARAMS) + m(b"K", u32(4243) + u32(0x11223344)) + z()

SCRAM = (
    auth(10, b"SCRAM-SHA-256\0\0")
    + auth(11, b"r=xV3yFJ/WUxMSClp1AbComiHv47cvuoaNJpRXgxRLTvTgGSIq,s=bE2m1hdqDMcQinW6Q5OfJw==,i=4096")
    + auth(12, b"v=rmRuWbSMjZYURbcfW8suJdFJrVnkq78H0D1IkIwIKgs=")
    + auth(0)
)

seeds = {
    # Startup sequences.
    "startup_trust": auth(0) + AFTER_AUTH,
    "startup_scram": SCRAM + AFTER_AUTH,
    "startup_scram_plus_offered": auth(10, b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"),
    "startup_md5": auth(5, bytes([0xE8, 0x85, 0xE7, 0x75])) + auth(0) + AFTER_AUTH,
    "startup_cleartext": auth(3) + auth(0) + AFTER_AUTH,
    "startup_gss_sspi_kerberos": auth(7) + auth(8, b"\x60\x82tok") + auth(9) + auth(2),
    "startup_unknown_auth_99": auth(99) + auth(6, b"xx"),
    "startup_negotiate_3_2": m(b"v", u32(0x00030000) + u32(0)) + auth(0) + AFTER_AUTH,
    "startup_negotiate_option": m(b"v", u32(0x00030000) + u32(1) + b"_pq_.test_option\0"),
    "startup_key_3_2_32_bytes": auth(0) + m(b"K", u32(77) + bytes(range(32))) + z(),
    "startup_bad_password": SCRAM[: len(auth(10, b"SCRAM-SHA-256\0\0"))]
    + err(S=b"FATAL", V=b"FATAL", C=b"28P01", M=b'password authentication failed for user "scram_user"', F=b"auth.c", L=b"326", R=b"auth_failed"),
    "startup_no_such_db": auth(0) + err(S=b"FATAL", V=b"FATAL", C=b"3D000", M=b'database "nosuchdb" does not exist'),
    "startup_protocol_4": err(S=b"FATAL", V=b"FATAL", C=b"0A000", M=b"unsupported frontend protocol 4.0: server supports 3.0 to 3.0"),
    "startup_v2_error": b"EFATAL:  unsupported frontend protocol 2.0: server supports 3.0 to 3.0\n\0",
    # Simple query results.
    "query_select_1": rowdesc(fd(b"?column?", typ=23, size=4)) + row(b"1") + cc(b"SELECT 1") + z(),
    "query_two_columns": rowdesc(fd(b"id", 16384, 1, 23, 4), fd(b"name", 16384, 2, 25))
    + b"".join(row(str(i).encode(), b"row-%d" % i) for i in range(5)) + cc(b"SELECT 5") + z(),
    "query_nulls": rowdesc(fd(b"a"), fd(b"b"), fd(b"c")) + row(None, b"", None) + row(b"x", None, b"") + cc(b"SELECT 2") + z(),
    "query_empty_result": rowdesc(fd(b"a")) + cc(b"SELECT 0") + z(),
    "query_zero_columns": rowdesc() + row() + cc(b"SELECT 1") + z(),
    "query_multi_with_error": rowdesc(fd(b"a", typ=23, size=4)) + row(b"1") + cc(b"SELECT 1")
    + err(S=b"ERROR", V=b"ERROR", C=b"22012", M=b"division by zero", F=b"int.c", L=b"841", R=b"int4div") + z(),
    "query_notice_then_rows": err(b"N", S=b"NOTICE", V=b"NOTICE", C=b"00000", M=b"n1", W=b"PL/pgSQL function inline_code_block line 1 at RAISE")
    + cc(b"DO") + rowdesc(fd(b"?column?", typ=23, size=4)) + row(b"2") + cc(b"SELECT 1") + z(),
    "query_transaction": cc(b"BEGIN") + z(b"T") + err(S=b"ERROR", C=b"22012", M=b"division by zero") + z(b"E")
    + err(S=b"ERROR", C=b"25P02", M=b"current transaction is aborted, commands ignored until end of transaction block") + z(b"E") + cc(b"ROLLBACK") + z(),
    "query_empty": m(b"I") + z(),
    "query_insert": cc(b"INSERT 0 1") + cc(b"UPDATE 3") + cc(b"DELETE 0") + z(),
    "query_error_all_fields": err(S=b"ERROR", V=b"ERROR", C=b"42601", M=b'syntax error at or near "SELEC"', D=b"detail", H=b"hint", P=b"1",
                                  p=b"2", q=b"internal", W=b"context", s=b"public", t=b"tbl", c=b"col", d=b"dom", n=b"cons", F=b"scan.l", L=b"1176", R=b"scanner_yyerror") + z(),
    "query_cancelled": rowdesc(fd(b"pg_sleep", typ=2278, size=4)) + err(S=b"ERROR", C=b"57014", M=b"canceling statement due to user request") + z(),
    "query_parameter_status_midstream": rowdesc(fd(b"a")) + row(b"1") + ps(b"TimeZone", b"Europe/Paris") + row(b"2") + cc(b"SELECT 2") + z(),
    # Notifications.
    "notify_self": cc(b"LISTEN") + cc(b"NOTIFY") + m(b"A", u32(4243) + b"c\0p\0") + z(),
    "notify_idle_empty_payload": m(b"A", u32(1) + b"channel\0\0") + m(b"A", u32(2) + b"other\0payload text\0"),
    "fatal_while_idle": err(S=b"FATAL", V=b"FATAL", C=b"57P01", M=b"terminating connection due to administrator command"),
    # COPY.
    "copy_out": m(b"H", b"\0" + i16(1) + i16(0)) + m(b"d", b"1\n") + m(b"c") + cc(b"COPY 1") + z(),
    "copy_out_binary": m(b"H", b"\1" + i16(2) + i16(1) + i16(1)) + m(b"d", b"PGCOPY\n\xff\r\n\0") + m(b"d", b"") + m(b"c") + cc(b"COPY 0") + z(),
    "copy_in_failed": m(b"G", b"\0" + i16(2) + i16(0) + i16(0))
    + err(S=b"ERROR", C=b"57014", M=b"COPY from stdin failed: COPY FROM STDIN is not supported", W=b"COPY ci, line 1") + z(),
    "copy_both": m(b"W", b"\0" + i16(0)) + m(b"d", b"w" + bytes(24)),
    # Extended protocol.
    "extended_query": m(b"1") + m(b"t", i16(2) + u32(23) + u32(25)) + rowdesc(fd(b"a")) + m(b"2") + row(b"x") + m(b"s")
    + row(b"y") + cc(b"SELECT 2") + m(b"3") + m(b"n") + z(),
    "function_call": m(b"V", i32(3) + b"abc") + m(b"V", i32(-1)) + z(),
    # Partial streams (end mid-message).
    "partial_header": z()[:3],
    "partial_body": rowdesc(fd(b"a")) + row(b"12345")[:-2],
    # Malformed samples.
    "bad_length_small": b"Z\0\0\0\x03I",
    "bad_length_huge_small_type": b"S\x00\x01\x00\x00",
    "bad_unknown_tag": m(b"?", b"xx"),
    "bad_datarow_len_minus_2": m(b"D", i16(1) + i32(-2)),
    "bad_datarow_negative_count": m(b"D", i16(-1)),
    "bad_datarow_trailing": m(b"D", i16(1) + i32(1) + b"ab"),
    "bad_datarow_overrun": m(b"D", i16(1) + i32(100) + b"ab"),
    "bad_key_3_bytes": m(b"K", u32(1) + b"abc"),
    "bad_key_257_bytes": m(b"K", u32(1) + bytes(257)),
    "bad_ready_status": m(b"Z", b"X"),
    "bad_error_no_terminator": m(b"E", b"SERROR\0Mboom\0"),
    "bad_sasl_list_unterminated": auth(10, b"SCRAM-SHA-256\0"),
    "bad_md5_short_salt": auth(5, b"\1\2\3"),
    "bad_auth_ok_payload": auth(0, b"x"),
    "bad_rowdesc_missing_nul": m(b"T", i16(1) + b"abc"),
    "bad_negotiate_negative_count": m(b"v", u32(0x00030000) + i32(-1)),
    "bad_copy_negative_columns": m(b"H", b"\0" + i16(-1)),
    "bad_param_desc_truncated": m(b"t", i16(3) + u32(23)),
    "bad_function_len_minus_2": m(b"V", i32(-2)),
    "bad_parse_complete_payload": m(b"1", b"\0"),
}

os.makedirs(OUT, exist_ok=True)
for old in os.listdir(OUT):
    os.remove(os.path.join(OUT, old))
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds written to {OUT}")
