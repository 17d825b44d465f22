//! The bulk load path: a batch of records as one `COPY ... FROM STDIN (FORMAT binary)`
//! stream, the format PostgreSQL's own tools use for bulk data (`pg_dump -Fc`,
//! `pg_restore`), parsed by the server without text conversion: bigints and floats go
//! over as their big-endian bytes, and a vector as pgvector's `vector_recv` reads it
//! (int16 dimension, int16 unused, then the float4s).
//!
//! The generated `tsv` column is not sent; the server computes it for every row.

use crate::driver::{AttrKind, AttrValue, Record, Schema};

/// `PGCOPY\n\377\r\n\0`, then the flags field and the header extension length (both 0).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The file trailer: a tuple field count of -1.
const TRAILER: &[u8] = &(-1i16).to_be_bytes();

/// `COPY <table> (id, embedding, text, <attributes>) FROM STDIN (FORMAT binary)`.
pub(super) fn copy_sql(table: &str, attr_cols: &str) -> String {
    format!("COPY {table} (id, embedding, text{attr_cols}) FROM STDIN (FORMAT binary)")
}

/// Why a batch cannot be encoded: a record that does not match the collection's schema.
#[derive(Debug, PartialEq)]
pub(super) enum Mismatch {
    /// The record's attribute at this index is missing or of another kind.
    Attribute(usize),
    /// The record's vector has another length than the collection's dimension.
    Dim { got: usize },
}

/// One binary COPY stream holding every record of `batch`, in order.
pub(super) fn encode(batch: &[Record], schema: &Schema) -> Result<Vec<u8>, Mismatch> {
    let fields = 3 + schema.attributes.len();
    let per_row = 2 + fields * 4 + 8 + 4 + schema.dim * 4 + 64;
    let mut out = Vec::with_capacity(HEADER.len() + batch.len() * per_row + TRAILER.len());
    out.extend_from_slice(HEADER);
    for r in batch {
        if r.vector.len() != schema.dim {
            return Err(Mismatch::Dim { got: r.vector.len() });
        }
        // A field count and the id fit in i16 and i64 by construction: a handful of
        // attributes, and ids numbered from 0 well below i64::MAX.
        out.extend_from_slice(&(fields as i16).to_be_bytes());
        field(&mut out, &(r.id as i64).to_be_bytes());
        out.extend_from_slice(&((4 + r.vector.len() * 4) as i32).to_be_bytes());
        out.extend_from_slice(&(r.vector.len() as i16).to_be_bytes());
        out.extend_from_slice(&0i16.to_be_bytes());
        for x in r.vector.iter() {
            out.extend_from_slice(&x.to_be_bytes());
        }
        field(&mut out, r.text.as_bytes());
        for (i, a) in schema.attributes.iter().enumerate() {
            match (r.attributes.get(i), a.kind) {
                (Some(AttrValue::Integer(x)), AttrKind::Integer) => field(&mut out, &x.to_be_bytes()),
                (Some(AttrValue::Keyword(s)), AttrKind::Keyword) => field(&mut out, s.as_bytes()),
                _ => return Err(Mismatch::Attribute(i)),
            }
        }
    }
    out.extend_from_slice(TRAILER);
    Ok(out)
}

/// A non-null field: its length, then its bytes.
fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::driver::{AttributeDef, Metric};
    use std::sync::Arc;

    fn schema() -> Schema {
        Schema {
            collection: "c".into(),
            dim: 2,
            metric: Metric::Cosine,
            links: false,
            attributes: vec![
                AttributeDef { name: "year".into(), kind: AttrKind::Integer },
                AttributeDef { name: "lang".into(), kind: AttrKind::Keyword },
            ],
        }
    }

    fn record(id: u64, attributes: Vec<AttrValue>) -> Record {
        Record { id, vector: Arc::from(vec![1.0f32, -0.5]), text: Arc::from("hé"), attributes }
    }

    /// Read one length-prefixed field, advancing `at`.
    fn take<'a>(b: &'a [u8], at: &mut usize) -> &'a [u8] {
        let n = i32::from_be_bytes(b[*at..*at + 4].try_into().unwrap()) as usize;
        *at += 4;
        let f = &b[*at..*at + n];
        *at += n;
        f
    }

    #[test]
    fn a_batch_is_header_tuples_and_trailer_in_postgres_binary_layout() {
        let batch = [
            record(7, vec![AttrValue::Integer(2015), AttrValue::Keyword("en".into())]),
            record(8, vec![AttrValue::Integer(-1), AttrValue::Keyword("".into())]),
        ];
        let b = encode(&batch, &schema()).unwrap();
        assert_eq!(&b[..11], b"PGCOPY\n\xff\r\n\0");
        assert_eq!(&b[11..19], &[0u8; 8]);
        let mut at = 19;
        for (id, year, lang) in [(7i64, 2015i64, "en"), (8, -1, "")] {
            assert_eq!(i16::from_be_bytes([b[at], b[at + 1]]), 5);
            at += 2;
            assert_eq!(take(&b, &mut at), id.to_be_bytes());
            let v = take(&b, &mut at);
            assert_eq!(&v[..4], &[0, 2, 0, 0]);
            assert_eq!(f32::from_be_bytes(v[4..8].try_into().unwrap()), 1.0);
            assert_eq!(f32::from_be_bytes(v[8..12].try_into().unwrap()), -0.5);
            assert_eq!(take(&b, &mut at), "hé".as_bytes());
            assert_eq!(take(&b, &mut at), year.to_be_bytes());
            assert_eq!(take(&b, &mut at), lang.as_bytes());
        }
        assert_eq!(&b[at..], &[0xff, 0xff]);
    }

    #[test]
    fn a_record_off_the_schema_is_refused_not_sent() {
        let wrong_kind = record(1, vec![AttrValue::Keyword("x".into()), AttrValue::Keyword("en".into())]);
        assert_eq!(encode(&[wrong_kind], &schema()), Err(Mismatch::Attribute(0)));
        let missing = record(1, vec![AttrValue::Integer(1)]);
        assert_eq!(encode(&[missing], &schema()), Err(Mismatch::Attribute(1)));
        let mut short = record(1, vec![AttrValue::Integer(1), AttrValue::Keyword("en".into())]);
        short.vector = Arc::from(vec![1.0f32]);
        assert_eq!(encode(&[short], &schema()), Err(Mismatch::Dim { got: 1 }));
    }
}
