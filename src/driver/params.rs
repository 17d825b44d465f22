//! Per-op search parameters (`params = { ef_search = 100 }` on a knn op) as each driver
//! declares them: which it reads, on which ops, with which type and range.
//!
//! The declarations are the contract, checked before anything is contacted: `dbbench
//! validate` and `run` refuse a param that no engine of the workload reads, or a value an
//! engine that reads it could not take, and a param that only some engines read is
//! recorded per engine as applied or not applicable. A driver must read every param it
//! declares, and must never fail a request over a param it does not declare: a request is
//! timed, and a workload's params go to every engine.

use serde::{Deserialize, Serialize};

use super::{DriverError, DriverResult, OpKind, SearchParams};

/// The type of a param's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamKind {
    /// An integer from `min` to `max`, both included.
    Integer {
        min: i64,
        max: i64,
    },
    /// A number from `min` to `max`, both included.
    Float {
        min: f64,
        max: f64,
    },
    Bool,
}

impl ParamKind {
    /// What a value must be ("an integer from 1 to 1000"), for messages and `dbbench
    /// engines`.
    pub fn describe(&self) -> String {
        match self {
            ParamKind::Integer { min: 1, max: i64::MAX } => "a positive integer".into(),
            ParamKind::Integer { min, max: i64::MAX } => format!("an integer of at least {min}"),
            ParamKind::Integer { min, max } => format!("an integer from {min} to {max}"),
            ParamKind::Float { min, max } => format!("a number from {min} to {max}"),
            ParamKind::Bool => "true or false".into(),
        }
    }

    /// Whether `v` is a value of this kind.
    pub fn admits(&self, v: &serde_json::Value) -> bool {
        match self {
            ParamKind::Integer { min, max } => v.as_i64().is_some_and(|x| (*min..=*max).contains(&x)),
            ParamKind::Float { min, max } => v.as_f64().is_some_and(|x| (*min..=*max).contains(&x)),
            ParamKind::Bool => v.is_boolean(),
        }
    }
}

/// The ops that search by vector, where index knobs (ef, probes, candidates) apply.
pub const VECTOR_SEARCH: &[OpKind] = &[OpKind::Knn, OpKind::Hybrid];

/// The vector searches and expand, whose seeds are a vector search, for a driver that
/// applies its index knobs to those seeds too.
pub const VECTOR_SEARCH_AND_EXPAND: &[OpKind] = &[OpKind::Knn, OpKind::Hybrid, OpKind::Expand];

/// One param a driver reads.
#[derive(Debug, Clone, Copy)]
pub struct ParamDef {
    pub name: &'static str,
    pub kind: ParamKind,
    /// The op kinds it is read on.
    pub ops: &'static [OpKind],
    pub summary: &'static str,
}

impl ParamDef {
    pub fn reads(&self, name: &str, op: OpKind) -> bool {
        self.name == name && self.ops.contains(&op)
    }
}

/// The def among `defs` that reads `name` on `op`.
pub fn find<'a>(defs: &'a [ParamDef], name: &str, op: OpKind) -> Option<&'a ParamDef> {
    defs.iter().find(|d| d.reads(name, op))
}

/// How one engine took an op's params, in results: the ones it applied and the ones it
/// does not read on that op (sent to it and ignored, as the workload gives every engine
/// the same params).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamUse {
    pub applied: Vec<String>,
    pub not_applicable: Vec<String>,
}

impl ParamUse {
    /// How a driver declaring `defs` takes `params` on an op of kind `op`; `None` when
    /// the op has no params.
    pub fn of(defs: &[ParamDef], op: OpKind, params: &SearchParams) -> Option<ParamUse> {
        if params.is_empty() {
            return None;
        }
        let (applied, not_applicable) = params.keys().cloned().partition(|k| find(defs, k, op).is_some());
        Some(ParamUse { applied, not_applicable })
    }
}

impl ParamDef {
    /// This param's value in `params`, if given. The plan has checked every value against
    /// the declarations before the run; a value that still does not fit comes from a
    /// caller that skipped the plan (a test, a bench), and is refused.
    pub fn get<'p>(&self, driver: &str, params: &'p SearchParams) -> DriverResult<Option<&'p serde_json::Value>> {
        match params.get(self.name) {
            Some(v) if !self.kind.admits(v) => Err(DriverError::rejected(format!(
                "{driver}: params.{} must be {}, got {v}",
                self.name,
                self.kind.describe()
            ))),
            v => Ok(v),
        }
    }

    /// An integer param's value (see `get`).
    pub fn integer(&self, driver: &str, params: &SearchParams) -> DriverResult<Option<i64>> {
        Ok(self.get(driver, params)?.and_then(serde_json::Value::as_i64))
    }

    /// A bool param's value (see `get`).
    pub fn bool(&self, driver: &str, params: &SearchParams) -> DriverResult<Option<bool>> {
        Ok(self.get(driver, params)?.and_then(serde_json::Value::as_bool))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    const EF: ParamDef = ParamDef {
        name: "ef",
        kind: ParamKind::Integer { min: 1, max: 1000 },
        ops: &[OpKind::Knn, OpKind::Hybrid],
        summary: "",
    };

    #[test]
    fn kinds_admit_only_their_values() {
        let int = ParamKind::Integer { min: 1, max: 10 };
        assert!(int.admits(&serde_json::json!(1)) && int.admits(&serde_json::json!(10)));
        assert!(!int.admits(&serde_json::json!(0)) && !int.admits(&serde_json::json!(11)));
        assert!(!int.admits(&serde_json::json!(2.5)) && !int.admits(&serde_json::json!("5")));
        assert!(ParamKind::Bool.admits(&serde_json::json!(true)) && !ParamKind::Bool.admits(&serde_json::json!(1)));
        let f = ParamKind::Float { min: 0.0, max: 1.0 };
        assert!(
            f.admits(&serde_json::json!(0.5)) && f.admits(&serde_json::json!(1)) && !f.admits(&serde_json::json!(2))
        );
    }

    #[test]
    fn a_driver_reads_a_declared_param_or_refuses_a_value_that_does_not_fit() {
        let mut p = SearchParams::new();
        assert_eq!(EF.integer("d", &p).unwrap(), None);
        p.insert("ef".into(), serde_json::json!(200));
        assert_eq!(EF.integer("d", &p).unwrap(), Some(200));
        p.insert("ef".into(), serde_json::json!(0));
        let e = EF.integer("d", &p).unwrap_err();
        assert_eq!(e.kind, crate::driver::ErrorKind::Rejected);
        assert_eq!(e.message, "d: params.ef must be an integer from 1 to 1000, got 0");
    }

    #[test]
    fn use_splits_params_into_applied_and_not_applicable_per_op_kind() {
        let mut p = SearchParams::new();
        assert_eq!(ParamUse::of(&[EF], OpKind::Knn, &p), None);
        p.insert("ef".into(), serde_json::json!(5));
        p.insert("other".into(), serde_json::json!(true));
        assert_eq!(
            ParamUse::of(&[EF], OpKind::Knn, &p),
            Some(ParamUse { applied: vec!["ef".into()], not_applicable: vec!["other".into()] })
        );
        assert_eq!(
            ParamUse::of(&[EF], OpKind::Text, &p),
            Some(ParamUse { applied: vec![], not_applicable: vec!["ef".into(), "other".into()] })
        );
    }
}
