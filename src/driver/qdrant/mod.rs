//! Qdrant, two ways: the server over gRPC (`server`, cargo feature `qdrant`) and Qdrant's
//! engine embedded in dbbench (`edge`, cargo feature `qdrant-edge`). What both share,
//! the collection's names, capabilities and per-op search knobs, is in `common`, so the
//! two cannot drift apart.

pub mod common;
#[cfg(feature = "qdrant-edge")]
pub mod edge;
#[cfg(feature = "qdrant")]
pub mod server;

#[cfg(any(feature = "qdrant", feature = "qdrant-edge"))]
use crate::driver::DriverKind;

/// The server's registry entry.
#[cfg(feature = "qdrant")]
pub const SERVER: DriverKind = common::kind::<server::QdrantServer>(
    "qdrant",
    "Qdrant server over gRPC: HNSW kNN with payload-index filters, server-side BM25 sparse text with IDF, RRF hybrid",
    Some("http://127.0.0.1:6334"),
    "QDRANT_BIN=/path/to/qdrant services/up.sh qdrant (or: docker compose -f docker-compose.bench.yml up -d qdrant)",
);

/// The embedded engine's registry entry.
#[cfg(feature = "qdrant-edge")]
pub const EDGE: DriverKind = common::kind::<edge::QdrantEdge>(
    "qdrant-edge",
    "Qdrant's engine embedded (qdrant-edge): HNSW kNN with payload-index filters, BM25 sparse text with IDF, RRF hybrid",
    None,
    "nothing to start: qdrant-edge runs Qdrant's engine inside dbbench",
);

#[cfg(all(test, feature = "qdrant", feature = "qdrant-edge"))]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::common::tests::{bad_shared_values, engine};
    use super::common::Flavor;
    use super::edge::QdrantEdge;
    use super::server::QdrantServer;

    #[test]
    fn both_drivers_refuse_the_same_bad_shared_values_with_the_same_message() {
        for (key, value, why) in bad_shared_values() {
            let server = QdrantServer::settings(&engine(key, value.clone())).unwrap_err();
            let edge = QdrantEdge::settings(&engine(key, value.clone())).unwrap_err();
            assert_eq!(server, edge, "{key} = {value}");
            assert!(server.contains(why), "{key} = {value}: {server}");
        }
        // And each refuses an unknown key, naming it, with its own keys in the list.
        let server = QdrantServer::settings(&engine("dir", toml::Value::Integer(1))).unwrap_err();
        assert!(server.contains("unknown field `dir`") && server.contains("api_key"), "{server}");
        let edge = QdrantEdge::settings(&engine("api_key", toml::Value::Integer(1))).unwrap_err();
        assert!(edge.contains("unknown field `api_key`") && edge.contains("dir"), "{edge}");
    }
}
