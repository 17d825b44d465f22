//! Namespace ownership: the one path by which a driver creates, recognises and drops its
//! own collection, table, index or folder.
//!
//! Every engine object dbbench creates carries dbbench's marker (`created_by =
//! "dbbench"`, written wherever the engine keeps metadata: collection metadata, an index
//! mapping's `_meta`, a table comment, a marker table or file). `prepare_own` drops an
//! earlier object of the same name only when it carries the marker, refuses a
//! same-named object without it, and then creates the new one; `release_own` drops
//! only a marked object. The refusal always names the engine, the object and where the
//! marker was looked for, so the user knows what to rename or remove.
//!
//! A driver supplies only its engine's own calls through `Namespace` (find and check the
//! marker, create with the marker, drop). This module must never drop or touch an object
//! the driver's `find` did not report as marked.

use async_trait::async_trait;

use crate::driver::Schema;
use crate::error::{DriverError, DriverResult};

/// The marker key and value every driver writes on what it creates.
pub const MARKER_KEY: &str = "created_by";
pub const MARKER_VALUE: &str = "dbbench";

/// What the engine holds under a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Nothing: free to create.
    Absent,
    /// An object carrying dbbench's marker: dbbench's own, free to drop.
    Marked,
    /// Something else holds the name: never touched.
    Unmarked,
}

/// One engine's calls on its namespace. The `collection` passed to each hook is
/// `Schema::collection`; the driver maps it to its own object (an index name, a file).
#[async_trait]
pub trait Namespace: Send {
    /// What `prepare_own` returns to the driver (a collection id, a connection, a shard).
    type Created: Send;

    /// The driver's kind, for messages.
    const ENGINE: &'static str;

    /// The object `collection` denotes, as the user would find it in the engine
    /// ("collection dbbench_x in tenant dbbench, database dbbench").
    fn object(&self, collection: &str) -> String;

    /// Where the marker is looked for ("metadata created_by = \"dbbench\"").
    fn marker(&self) -> String;

    /// What the user can do about a same-named object that is not dbbench's.
    const REMEDY: &'static str = "rename or remove it yourself, or run the workload under another name";

    /// Look the object up and check its marker.
    async fn find(&mut self, collection: &str) -> DriverResult<Found>;

    /// Create the object for `schema`, carrying the marker.
    async fn create(&mut self, schema: &Schema) -> DriverResult<Self::Created>;

    /// Drop an object that `find` reported as `Marked`.
    async fn drop_marked(&mut self, collection: &str) -> DriverResult<()>;

    /// Open an object that `find` reported as `Marked`, as it is (`Driver::attach`).
    async fn open(&mut self, _schema: &Schema) -> DriverResult<Self::Created> {
        Err(DriverError::unsupported(format!("{}: cannot attach to an existing collection", Self::ENGINE)))
    }
}

/// The refusal for a same-named object without dbbench's marker.
fn refusal<N: Namespace + ?Sized>(ns: &N, collection: &str) -> DriverError {
    DriverError::rejected(format!(
        "{}: {} exists and was not created by dbbench (no {}); {}",
        N::ENGINE,
        ns.object(collection),
        ns.marker(),
        N::REMEDY
    ))
}

/// Drop `collection` if dbbench created it; refuse when something else holds the name;
/// nothing to do when it is absent.
pub async fn release_own<N: Namespace + ?Sized>(ns: &mut N, collection: &str) -> DriverResult<()> {
    match ns.find(collection).await? {
        Found::Absent => Ok(()),
        Found::Marked => ns.drop_marked(collection).await,
        Found::Unmarked => Err(refusal(ns, collection)),
    }
}

/// `release_own` as a driver's `cleanup` calls it: `None` (prepare never ran, or cleanup
/// already did) has nothing to drop.
pub async fn release_prepared<N: Namespace + ?Sized>(ns: &mut N, collection: Option<&str>) -> DriverResult<()> {
    match collection {
        Some(c) => release_own(ns, c).await,
        None => Ok(()),
    }
}

/// Take up dbbench's existing object for `schema` (`Driver::attach`): open it when it
/// carries the marker, refuse a foreign one, and say so when there is none.
pub async fn attach_own<N: Namespace + ?Sized>(ns: &mut N, schema: &Schema) -> DriverResult<N::Created> {
    match ns.find(&schema.collection).await? {
        Found::Marked => ns.open(schema).await,
        Found::Unmarked => Err(refusal(ns, &schema.collection)),
        Found::Absent => Err(DriverError::other(format!(
            "{}: {} does not exist (nothing to attach to)",
            N::ENGINE,
            ns.object(&schema.collection)
        ))),
    }
}

/// Make dbbench's object for `schema`: drop an earlier one dbbench made, refuse a foreign
/// one (leaving it untouched), then create it with the marker.
pub async fn prepare_own<N: Namespace + ?Sized>(ns: &mut N, schema: &Schema) -> DriverResult<N::Created> {
    release_own(ns, &schema.collection).await?;
    ns.create(schema).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::Metric;

    /// An engine whose namespace is a list of (name, marked) pairs.
    struct Fake {
        objects: Vec<(String, bool)>,
        dropped: Vec<String>,
    }

    #[async_trait]
    impl Namespace for Fake {
        type Created = usize;
        const ENGINE: &'static str = "fake";
        fn object(&self, collection: &str) -> String {
            format!("table {collection}")
        }
        fn marker(&self) -> String {
            "marker row".into()
        }
        async fn find(&mut self, collection: &str) -> DriverResult<Found> {
            Ok(match self.objects.iter().find(|(n, _)| n == collection) {
                None => Found::Absent,
                Some((_, true)) => Found::Marked,
                Some((_, false)) => Found::Unmarked,
            })
        }
        async fn create(&mut self, schema: &Schema) -> DriverResult<usize> {
            self.objects.push((schema.collection.clone(), true));
            Ok(self.objects.len())
        }
        async fn drop_marked(&mut self, collection: &str) -> DriverResult<()> {
            self.objects.retain(|(n, _)| n != collection);
            self.dropped.push(collection.to_string());
            Ok(())
        }
    }

    fn schema(name: &str) -> Schema {
        Schema { collection: name.into(), dim: 2, metric: Metric::Cosine, attributes: Vec::new(), links: false }
    }

    #[tokio::test]
    async fn own_objects_are_replaced_and_foreign_ones_refused_untouched() {
        let mut ns = Fake { objects: vec![("ours".into(), true), ("theirs".into(), false)], dropped: Vec::new() };
        assert_eq!(prepare_own(&mut ns, &schema("ours")).await.expect("replaced"), 2);
        assert_eq!(ns.dropped, ["ours"]);
        let err = prepare_own(&mut ns, &schema("theirs")).await.expect_err("refused");
        assert_eq!(
            err.message,
            "fake: table theirs exists and was not created by dbbench (no marker row); \
             rename or remove it yourself, or run the workload under another name"
        );
        assert!(ns.objects.contains(&("theirs".into(), false)), "the foreign object is still there");
        assert!(release_own(&mut ns, "theirs").await.is_err());
        release_own(&mut ns, "absent").await.expect("nothing to drop");
        release_own(&mut ns, "ours").await.expect("dropped");
        assert_eq!(ns.dropped, ["ours", "ours"]);
    }
}
