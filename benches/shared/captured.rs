//! A result as PostgreSQL sends it, built byte by byte, for the benches that replay a query through
//! the sans-IO `Connection` without a server (`conn`, `access`).

fn message(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
}

/// What PostgreSQL sends for `SELECT g, '<prefix>' || g FROM generate_series(1, rows) g`: the
/// RowDescription (int4, text), `rows` DataRows, CommandComplete and ReadyForQuery.
pub fn captured_result(rows: usize, prefix: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut desc = 2i16.to_be_bytes().to_vec();
    for (name, oid) in [("g", 23u32), ("?column?", 25)] {
        desc.extend_from_slice(name.as_bytes());
        desc.push(0);
        desc.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        desc.extend_from_slice(&oid.to_be_bytes());
        desc.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]);
    }
    message(&mut out, b'T', &desc);
    for i in 1..=rows {
        let (a, b) = (i.to_string(), format!("{prefix}{i}"));
        let mut row = 2i16.to_be_bytes().to_vec();
        for f in [a.as_bytes(), b.as_bytes()] {
            row.extend_from_slice(&(f.len() as i32).to_be_bytes());
            row.extend_from_slice(f);
        }
        message(&mut out, b'D', &row);
    }
    message(&mut out, b'C', format!("SELECT {rows}\0").as_bytes());
    message(&mut out, b'Z', b"I");
    out
}
