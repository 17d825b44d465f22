//! What the two Qdrant drivers (`qdrant` over gRPC, `qdrant-edge` embedded) share: the
//! names in a collection, what they can do, which attribute names a payload can carry,
//! and how an op's search parameters are read. Their settings stay two structs: each is
//! `deny_unknown_fields`, which serde cannot combine with a flattened common part.

use crate::driver::{Capabilities, DriverError, DriverResult, OpKind, Schema, SearchParams, Support};

/// Name of the dense vector in a collection.
pub const DENSE: &str = "dense";
/// Name of the sparse BM25 vector in a collection.
pub const SPARSE: &str = "bm25";
/// Payload key of the document text.
pub const TEXT_KEY: &str = "text";

/// Every op natively, filters too, except read-modify-write: Qdrant has no
/// multi-statement transactions, so a read then a write would be two independent
/// operations, which is not what read_modify_write measures.
pub fn capabilities() -> Capabilities {
    let mut ops: std::collections::BTreeMap<OpKind, Support> =
        OpKind::ALL.iter().map(|k| (*k, Support::Native)).collect();
    ops.insert(OpKind::ReadModifyWrite, Support::No);
    Capabilities { ops, filters: Support::Native, transactions: false }
}

/// Attributes become payload keys beside the text: plain names only, and not `text`.
pub fn check_attributes(driver: &str, schema: &Schema) -> DriverResult<()> {
    for a in &schema.attributes {
        if a.name == TEXT_KEY || a.name.is_empty() || !a.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(DriverError::unsupported(format!(
                "{driver}: attribute name {:?} cannot be a payload key beside the text (use letters, digits and _, not \"text\")",
                a.name
            )));
        }
    }
    Ok(())
}

/// An op's `hnsw_ef` (else `default`) and `exact` params.
pub fn search_knobs(
    driver: &str,
    params: &SearchParams,
    default_ef: Option<u64>,
) -> DriverResult<(Option<u64>, Option<bool>)> {
    let hnsw_ef =
        match params.get("hnsw_ef") {
            None => default_ef,
            Some(v) => Some(v.as_u64().filter(|x| *x > 0).ok_or_else(|| {
                DriverError::rejected(format!("{driver}: hnsw_ef must be a positive integer, got {v}"))
            })?),
        };
    let exact = match params.get("exact") {
        None => None,
        Some(v) => Some(
            v.as_bool()
                .ok_or_else(|| DriverError::rejected(format!("{driver}: exact must be true or false, got {v}")))?,
        ),
    };
    Ok((hnsw_ef, exact))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_params_override_the_default_ef_and_bad_values_are_rejected() {
        let mut p = SearchParams::new();
        assert_eq!(search_knobs("q", &p, Some(64)).unwrap(), (Some(64), None));
        p.insert("hnsw_ef".into(), serde_json::json!(200));
        p.insert("exact".into(), serde_json::json!(true));
        assert_eq!(search_knobs("q", &p, Some(64)).unwrap(), (Some(200), Some(true)));
        p.insert("hnsw_ef".into(), serde_json::json!(0));
        assert!(search_knobs("q", &p, None).unwrap_err().message.contains("hnsw_ef must be a positive integer"));
    }
}
