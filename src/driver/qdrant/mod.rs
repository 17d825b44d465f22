//! Qdrant, two ways: the server over gRPC (`server`, cargo feature `qdrant`) and Qdrant's
//! engine embedded in dbbench (`edge`, cargo feature `qdrant-edge`). What both share,
//! the collection's names, capabilities and per-op search knobs, is in `common`, so the
//! two cannot drift apart.

pub mod common;
#[cfg(feature = "qdrant-edge")]
pub mod edge;
#[cfg(feature = "qdrant")]
pub mod server;
