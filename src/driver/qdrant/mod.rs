//! Qdrant, two ways: the server over gRPC (`server`, cargo feature `qdrant`) and Qdrant's
//! engine embedded in dbbench (`edge`, cargo feature `qdrant-edge`). What both share,
//! the collection's names, capabilities and per-op search knobs, is in `common`, so the
//! two cannot drift apart.

pub mod common;
#[cfg(feature = "qdrant-edge")]
pub mod edge;
#[cfg(feature = "qdrant")]
pub mod server;

#[cfg(all(test, feature = "qdrant", feature = "qdrant-edge"))]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::common::tests::{bad_shared_values, engine};

    #[test]
    fn both_drivers_refuse_the_same_bad_shared_values_with_the_same_message() {
        for (key, value, why) in bad_shared_values() {
            let server = super::server::Settings::parse(&engine(key, value.clone())).unwrap_err();
            let edge = super::edge::Settings::parse(&engine(key, value.clone())).unwrap_err();
            assert_eq!(server, edge, "{key} = {value}");
            assert!(server.contains(why), "{key} = {value}: {server}");
        }
        // And each refuses an unknown key, naming it, with its own keys in the list.
        let server = super::server::Settings::parse(&engine("dir", toml::Value::Integer(1))).unwrap_err();
        assert!(server.contains("unknown field `dir`") && server.contains("api_key"), "{server}");
        let edge = super::edge::Settings::parse(&engine("api_key", toml::Value::Integer(1))).unwrap_err();
        assert!(edge.contains("unknown field `api_key`") && edge.contains("dir"), "{edge}");
    }
}
