//! What the two Qdrant drivers (`qdrant` over gRPC, `qdrant-edge` embedded) share: the
//! names in a collection, what they can do, which attribute names a payload can carry,
//! the settings both read (declared once, in `qdrant_settings!`, and checked once), and
//! how an op's search parameters are read.
//!
//! Nothing here may differ between the two drivers by accident: a key both read has one
//! type, one default and one check.

use crate::driver::{
    params, Capabilities, Driver, DriverError, DriverKind, DriverResult, EngineConfig, Knob, OpKind, ParamDef,
    ParamKind, Schema, SearchParams, Support,
};

/// Name of the dense vector in a collection.
pub const DENSE: &str = "dense";
/// Name of the sparse BM25 vector in a collection.
pub const SPARSE: &str = "bm25";
/// Payload key of the document text.
pub const TEXT_KEY: &str = "text";

/// What a Qdrant driver supplies to its registry entry: how it reads its settings and how
/// it opens. Everything else in the entry (capabilities, search params, the validate and
/// open wrappers) is built here, once, by [`kind`].
pub trait Flavor: Driver + Sized + 'static {
    type Settings;
    /// Reads and checks the engine's `settings` table (shared keys through `check_shared`).
    fn settings(cfg: &EngineConfig) -> Result<Self::Settings, String>;
    /// Opens the driver; nothing is contacted before `connect`.
    fn open(cfg: &EngineConfig) -> Result<Self, String>;
}

fn validate<D: Flavor>(cfg: &EngineConfig) -> Result<(), String> {
    D::settings(cfg).map(drop)
}

fn open<D: Flavor>(cfg: &EngineConfig) -> Result<Box<dyn Driver>, String> {
    Ok(Box::new(D::open(cfg)?))
}

/// The registry entry of a Qdrant driver: both drivers have the same capabilities and
/// read the same search params, by construction; what differs is the flavour and its
/// words for `dbbench engines`.
pub const fn kind<D: Flavor>(
    kind: &'static str,
    summary: &'static str,
    default_url: Option<&'static str>,
    start_hint: &'static str,
) -> DriverKind {
    DriverKind {
        kind,
        summary,
        default_url,
        start_hint,
        capabilities,
        params: PARAMS,
        validate: validate::<D>,
        open: open::<D>,
        hidden: false,
    }
}

/// Every op natively, filters too, except read-modify-write (Qdrant has no
/// multi-statement transactions, so a read then a write would be two independent
/// operations, which is not what read_modify_write measures) and expand.
pub fn capabilities() -> Capabilities {
    let mut ops: std::collections::BTreeMap<OpKind, Support> =
        OpKind::ALL.iter().map(|k| (*k, Support::Native)).collect();
    ops.insert(OpKind::ReadModifyWrite, Support::No);
    // No links between points: an expansion would be a round trip per hop in dbbench,
    // not the engine's, and is not offered.
    ops.insert(OpKind::Expand, Support::No);
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

/// Declares a Qdrant driver's `Settings`: the driver's own keys, written `name: Type =
/// default,` with their doc comments, then the keys both drivers share, declared once
/// here, and `check_shared`, the one validation of those shared keys.
///
/// A macro, not a struct the two embed: the struct must stay `deny_unknown_fields`, so
/// that a mistyped key is refused with the list of every key the driver knows (and the
/// plan's `file:line`), and serde cannot combine that with a `#[serde(flatten)]` part.
macro_rules! qdrant_settings {
    ($(#[$attr:meta])* pub struct $name:ident { $($own:tt)* }) => {
        $crate::driver::qdrant::common::qdrant_settings!(@struct $(#[$attr])* $name { $($own)*
            /// HNSW: edges per node.
            m: usize = 16,
            /// HNSW: candidates while building.
            ef_construct: usize = 100,
            /// HNSW: candidates while searching, unless an op's `hnsw_ef` param says
            /// otherwise. Unset: the engine's default.
            hnsw_ef: Option<usize> = None,
            /// Below this many KiB of vectors a search is a full scan (Qdrant's default: 10000).
            full_scan_threshold_kb: usize = 10_000,
            /// Segments with more KiB of vectors than this get an HNSW index (Qdrant's
            /// default: 10000; 0 never builds one).
            indexing_threshold_kb: usize = 10_000,
            /// "none" or "int8" (scalar quantization, searched with rescoring).
            quantization: String = "none".into(),
            /// Re-score quantized candidates with the original vectors.
            rescore: bool = true,
            /// Quantization oversampling factor (candidates = k x oversampling before rescoring).
            oversampling: f64 = 1.0,
            /// Keep payloads on disk (Qdrant's default) or in memory.
            on_disk_payload: bool = true,
            /// Candidates each prefetch of a hybrid query passes to fusion.
            hybrid_candidates: usize = 100,
            /// The k of reciprocal rank fusion: score = sum 1 / (rrf_k + rank).
            rrf_k: u32 = 60,
            /// BM25 k1 (term frequency saturation).
            bm25_k1: f64 = 1.2,
            /// BM25 b (length normalisation).
            bm25_b: f64 = 0.75,
            /// BM25 expected document length in tokens (Qdrant's model fixes it; it is not
            /// measured from the corpus).
            bm25_avg_len: f64 = 256.0,
            /// Language of the BM25 tokenizer's stopwords and stemmer.
            language: String = "english".into(),
        });

        impl $name {
            /// The settings as `describe` reports them: the driver's own keys (`own`,
            /// a JSON object), then the shared ones in one order, the driver's words for
            /// its text search, the hybrid query, and one last key of its own.
            fn describe_with(
                &self,
                own: serde_json::Value,
                text: String,
                last: (&str, &str),
            ) -> serde_json::Map<String, serde_json::Value> {
                let mut out = own.as_object().cloned().unwrap_or_default();
                let shared = serde_json::json!({
                    "m": self.m,
                    "ef_construct": self.ef_construct,
                    "hnsw_ef": self.hnsw_ef,
                    "full_scan_threshold_kb": self.full_scan_threshold_kb,
                    "indexing_threshold_kb": self.indexing_threshold_kb,
                    "quantization": self.quantization,
                    "rescore": self.rescore,
                    "oversampling": self.oversampling,
                    "on_disk_payload": self.on_disk_payload,
                    "text": text,
                    "hybrid": format!(
                        "query API: dense and BM25 prefetches of {} candidates, reciprocal rank fusion k = {}",
                        self.hybrid_candidates, self.rrf_k
                    ),
                });
                out.extend(shared.as_object().cloned().unwrap_or_default());
                out.insert(last.0.to_string(), serde_json::Value::from(last.1));
                out
            }

            /// Refuse a bad value of a shared key, with the same message in both drivers.
            fn check_shared(&self, engine: &str) -> Result<(), String> {
                let bad = |key: &str, why: &str| Err(format!("engines.{engine}.settings.{key}: {why}"));
                let positive = |x: f64| x.is_finite() && x > 0.0;
                if !["none", "int8"].contains(&self.quantization.as_str()) {
                    return bad("quantization", "use \"none\" or \"int8\"");
                }
                if self.m == 0 {
                    return bad("m", "must be at least 1");
                }
                if self.ef_construct < 4 {
                    return bad("ef_construct", "must be at least 4");
                }
                if self.hnsw_ef == Some(0) {
                    return bad("hnsw_ef", "must be at least 1 (leave it out for the engine's default)");
                }
                if self.hybrid_candidates == 0 {
                    return bad("hybrid_candidates", "must be at least 1");
                }
                if self.rrf_k == 0 {
                    return bad("rrf_k", "must be at least 1");
                }
                if self.oversampling.is_nan() || self.oversampling < 1.0 {
                    return bad("oversampling", "must be at least 1.0");
                }
                if !positive(self.bm25_k1) {
                    return bad("bm25_k1", "must be a number above 0");
                }
                if !(0.0..=1.0).contains(&self.bm25_b) {
                    return bad("bm25_b", "must be from 0 to 1");
                }
                if !positive(self.bm25_avg_len) {
                    return bad("bm25_avg_len", "must be a number above 0");
                }
                if self.language.is_empty() {
                    return bad("language", "name the BM25 tokenizer's language, e.g. \"english\"");
                }
                Ok(())
            }
        }
    };
    (@struct $(#[$attr:meta])* $name:ident { $( $(#[$doc:meta])* $field:ident : $ty:ty = $default:expr, )* }) => {
        $(#[$attr])*
        #[derive(Debug, Clone, serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            $( $(#[$doc])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }
    };
}
pub(crate) use qdrant_settings;

/// The per-op params both Qdrant drivers read, into the query's search params.
pub const PARAMS: &[ParamDef] = &[HNSW_EF, EXACT];

/// Search effort is `hnsw_ef`, per request.
pub const EFFORT: Knob = Knob::request(HNSW_EF.name, 1_000_000);

const HNSW_EF: ParamDef = ParamDef {
    name: "hnsw_ef",
    kind: ParamKind::Integer { min: 1, max: i64::MAX },
    ops: params::VECTOR_SEARCH,
    summary: "HNSW candidates while searching; default settings.hnsw_ef, else the engine's",
};

const EXACT: ParamDef = ParamDef {
    name: "exact",
    kind: ParamKind::Bool,
    ops: params::VECTOR_SEARCH,
    summary: "true: exact search, bypassing the HNSW index",
};

/// An op's `hnsw_ef` (else `default`) and `exact` params.
pub fn search_knobs(
    driver: &str,
    params: &SearchParams,
    default_ef: Option<usize>,
) -> DriverResult<(Option<usize>, Option<bool>)> {
    let hnsw_ef = HNSW_EF.integer(driver, params)?.map(|ef| ef as usize).or(default_ef);
    Ok((hnsw_ef, EXACT.bool(driver, params)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
pub(super) mod tests {
    use super::*;
    use crate::driver::{parse_settings, EngineConfig};

    qdrant_settings! {
        /// Only the shared keys: the macro on its own, whatever features are on.
        #[allow(dead_code)]
        pub struct SharedOnly {}
    }

    pub(in crate::driver::qdrant) fn engine(key: &str, value: toml::Value) -> EngineConfig {
        EngineConfig {
            name: "q".into(),
            url: None,
            settings: toml::Table::from_iter([(key.to_string(), value)]),
            base_dir: ".".into(),
        }
    }

    /// A bad value for every shared key that has a range, and what it is refused with.
    pub(in crate::driver::qdrant) fn bad_shared_values() -> Vec<(&'static str, toml::Value, &'static str)> {
        use toml::Value::{Float, Integer, String};
        vec![
            ("quantization", String("pq".into()), "settings.quantization: use \"none\" or \"int8\""),
            ("m", Integer(0), "settings.m: must be at least 1"),
            ("ef_construct", Integer(3), "settings.ef_construct: must be at least 4"),
            ("hnsw_ef", Integer(0), "settings.hnsw_ef: must be at least 1"),
            ("hybrid_candidates", Integer(0), "settings.hybrid_candidates: must be at least 1"),
            ("rrf_k", Integer(0), "settings.rrf_k: must be at least 1"),
            // rrf_k was a u32 in one driver and a usize in the other.
            ("rrf_k", Integer(5_000_000_000), "expected u32"),
            ("oversampling", Float(0.5), "settings.oversampling: must be at least 1.0"),
            ("bm25_k1", Float(0.0), "settings.bm25_k1: must be a number above 0"),
            // The BM25 ranges were checked by one driver only.
            ("bm25_b", Float(1.5), "settings.bm25_b: must be from 0 to 1"),
            ("bm25_avg_len", Float(-1.0), "settings.bm25_avg_len: must be a number above 0"),
            ("bm25_avg_len", Float(f64::NAN), "settings.bm25_avg_len: must be a number above 0"),
            ("language", String(std::string::String::new()), "settings.language:"),
            ("m", String("16".into()), "invalid type"),
        ]
    }

    fn shared_only(cfg: &EngineConfig) -> Result<SharedOnly, String> {
        let s: SharedOnly = parse_settings(cfg)?;
        s.check_shared(&cfg.name)?;
        Ok(s)
    }

    #[test]
    fn the_shared_keys_are_declared_once_with_their_defaults_and_checks() {
        let d = shared_only(&EngineConfig { settings: toml::Table::new(), ..engine("m", toml::Value::Integer(1)) })
            .unwrap();
        assert_eq!((d.m, d.ef_construct, d.hnsw_ef, d.rrf_k, d.hybrid_candidates), (16, 100, None, 60, 100));
        assert_eq!((d.quantization.as_str(), d.language.as_str()), ("none", "english"));
        for (key, value, why) in bad_shared_values() {
            let e = shared_only(&engine(key, value.clone())).unwrap_err();
            assert!(e.starts_with("engines.q.settings") && e.contains(why), "{key} = {value}: {e}");
        }
        let e = shared_only(&engine("dri", toml::Value::Integer(1))).unwrap_err();
        assert!(e.contains("unknown field `dri`"), "unknown keys are still refused: {e}");
    }

    #[test]
    fn described_settings_keep_one_order_own_keys_first() {
        let d = shared_only(&EngineConfig { settings: toml::Table::new(), ..engine("m", toml::Value::Integer(1)) })
            .unwrap();
        let m = d.describe_with(serde_json::json!({ "dir": "x" }), "BM25".into(), ("client", "c"));
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys.first(), Some(&"dir"));
        assert_eq!(keys.last(), Some(&"client"));
        assert_eq!(&keys[keys.len() - 3..keys.len() - 1], ["text", "hybrid"]);
        assert_eq!(m["m"], serde_json::json!(16));
        assert!(m["hybrid"].as_str().unwrap().contains("100 candidates, reciprocal rank fusion k = 60"));
    }

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
