//! The no-op engine: answers every request at once without doing anything. It measures
//! dbbench itself (scheduling, recording, dispatch), which is the floor under every
//! engine's numbers. Never a stand-in for a real engine.

use async_trait::async_trait;

use super::*;

pub const KIND: DriverKind = DriverKind {
    kind: "noop",
    summary: "answers every request at once; measures dbbench's own overhead",
    default_url: None,
    start_hint: "nothing to start",
    capabilities: Capabilities::all_native,
    params: &[],
    validate: |cfg| {
        if cfg.settings.is_empty() {
            Ok(())
        } else {
            Err(format!("engines.{}.settings: the noop driver takes no settings", cfg.name))
        }
    },
    open: |_| Ok(Box::new(Noop)),
    hidden: false,
};

pub struct Noop;

#[async_trait]
impl Driver for Noop {
    fn kind(&self) -> &'static str {
        "noop"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::all_native()
    }
    async fn ping(&self) -> DriverResult<()> {
        Ok(())
    }
    async fn prepare(&self, _schema: &Schema) -> DriverResult<()> {
        Ok(())
    }
    async fn load(&self, _batch: &[Record]) -> DriverResult<()> {
        Ok(())
    }
    async fn load_links(&self, _links: &[Link]) -> DriverResult<()> {
        Ok(())
    }
    async fn finish_load(&self) -> DriverResult<IndexStats> {
        Ok(IndexStats::default())
    }
    async fn execute(&self, op: &Op<'_>) -> DriverResult<Outcome> {
        Ok(match op {
            Op::Knn { .. } | Op::Text { .. } | Op::Hybrid { .. } | Op::Scan { .. } | Op::Expand { .. } => {
                Outcome::Hits(Vec::new())
            }
            Op::Get { .. } => Outcome::Found(None),
            _ => Outcome::Written(1),
        })
    }
    async fn describe(&self) -> DriverResult<EngineInfo> {
        Ok(EngineInfo { version: env!("CARGO_PKG_VERSION").to_string(), settings: Default::default() })
    }
    async fn cleanup(&self) -> DriverResult<()> {
        Ok(())
    }
}
