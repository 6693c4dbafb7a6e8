//! Codec benchmarks: pgdblink's backend decoder against `postgres-protocol` on the same stream of
//! 100,000 DataRow messages (two text columns), visiting every field.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fallible_iterator::FallibleIterator;
use pgdblink::protocol::{BackendMessage, Decoded, Limits, decode};
use postgres_protocol::message::backend::Message;

const ROWS: usize = 100_000;

/// `ROWS` DataRow messages: an int as text and a short string such as `row-12345`.
fn data_rows() -> Vec<u8> {
    let mut buf = Vec::with_capacity(ROWS * 32);
    for i in 0..ROWS {
        let a = i.to_string();
        let b = format!("row-{i}");
        let len = 4 + 2 + 4 + a.len() + 4 + b.len();
        buf.push(b'D');
        buf.extend_from_slice(&(len as u32).to_be_bytes());
        buf.extend_from_slice(&2i16.to_be_bytes());
        for f in [a.as_bytes(), b.as_bytes()] {
            buf.extend_from_slice(&(f.len() as i32).to_be_bytes());
            buf.extend_from_slice(f);
        }
    }
    buf
}

fn pgdblink_decode(buf: &[u8], limits: &Limits) -> usize {
    let mut pos = 0;
    let mut rows = 0;
    while let Ok(Decoded::Message(msg, used)) = decode(&buf[pos..], limits) {
        if let BackendMessage::DataRow(row) = msg {
            for field in row.fields() {
                black_box(field);
            }
            rows += 1;
        }
        pos += used;
    }
    rows
}

fn postgres_protocol_decode(mut buf: BytesMut) -> usize {
    let mut rows = 0;
    while let Ok(Some(msg)) = Message::parse(&mut buf) {
        if let Message::DataRow(row) = msg {
            let body = row.buffer();
            let mut ranges = row.ranges();
            while let Ok(Some(range)) = ranges.next() {
                black_box(range.map(|r| &body[r]));
            }
            rows += 1;
        }
    }
    rows
}

fn bench(c: &mut Criterion) {
    let buf = data_rows();
    let limits = Limits::default();
    assert_eq!(pgdblink_decode(&buf, &limits), ROWS);
    assert_eq!(postgres_protocol_decode(BytesMut::from(&buf[..])), ROWS);

    for (group_name, throughput) in [
        ("decode_datarows", Throughput::Elements(ROWS as u64)),
        ("decode_datarows_bytes", Throughput::Bytes(buf.len() as u64)),
    ] {
        let mut group = c.benchmark_group(group_name);
        group.throughput(throughput);
        group.bench_function("pgdblink", |b| {
            b.iter(|| pgdblink_decode(black_box(&buf), &limits))
        });
        group.bench_function("postgres-protocol", |b| {
            b.iter_batched(
                || BytesMut::from(&buf[..]),
                postgres_protocol_decode,
                BatchSize::LargeInput,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
