//! Turning an `OpPlan` into concrete requests: which query, which id, which record.
//! Everything a request needs is chosen here, before its timer starts.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rand::distributions::{Distribution, WeightedIndex};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use crate::data::Dataset;
use crate::driver::{AttrValue, Op, OpKind, Record};
use crate::spec::{AttributeGen, AttributePlan, KeyChoice, OpPlan, QueryOrder};

/// Ids that exist in the engine: the loaded records `0..loaded`, plus records inserted by
/// this run (ids from `loaded` upwards). Shared by all workers of one engine.
#[derive(Debug)]
pub struct Keyspace {
    pub loaded: u64,
    next_insert: AtomicU64,
    /// How far apart this process's new ids are: 1, or N for a shard of N (shard I
    /// inserts `loaded + I + N·k`, so shards never insert the same id).
    stride: u64,
    /// Ids inserted by this run and not yet deleted, oldest first: deletes take from here,
    /// so a run only ever deletes what it inserted.
    inserted: Mutex<VecDeque<u64>>,
    /// With records held out of the load (`dataset.stream`): inserts insert those, deletes
    /// take any live record, and every acknowledged write is logged with its time.
    stream: Option<Stream>,
}

/// When each write of a streaming run was acknowledged: what was live at any moment.
#[derive(Debug, Clone, Default)]
pub struct WriteLog {
    /// When each insert and delete was acknowledged.
    pub inserted: HashMap<u64, Instant>,
    pub deleted: HashMap<u64, Instant>,
    /// When each acknowledged insert and delete was sent.
    pub insert_sent: HashMap<u64, Instant>,
    pub delete_sent: HashMap<u64, Instant>,
}

impl WriteLog {
    /// Was record `id` live at `t`, by the acknowledgements (ids below `loaded` were loaded)?
    pub fn live_at(&self, id: u64, loaded: u64, t: Instant) -> bool {
        let in_ = id < loaded || self.inserted.get(&id).is_some_and(|at| *at <= t);
        in_ && self.deleted.get(&id).is_none_or(|at| *at > t)
    }

    /// Was record `id` live at `t` if every write in flight then (sent, not yet
    /// acknowledged) had already taken effect? An engine may show such a write or not.
    pub fn live_at_with_in_flight(&self, id: u64, loaded: u64, t: Instant) -> bool {
        let in_ = id < loaded || self.insert_sent.get(&id).is_some_and(|at| *at <= t);
        in_ && self.delete_sent.get(&id).is_none_or(|at| *at > t)
    }

    /// Records live at `t`.
    pub fn live_count_at(&self, loaded: u64, t: Instant) -> u64 {
        let ins = self.inserted.values().filter(|at| **at <= t).count() as u64;
        let del = self.deleted.values().filter(|at| **at <= t).count() as u64;
        (loaded + ins).saturating_sub(del)
    }
}

#[derive(Debug)]
struct Stream {
    /// Held-out ids, in the seeded order inserts take them.
    held_out: Vec<u64>,
    next: AtomicU64,
    state: Mutex<StreamState>,
}

#[derive(Debug)]
struct StreamState {
    /// Records a delete may take: loaded ones and acknowledged inserts, not yet deleted
    /// (nor being deleted).
    live: Vec<u64>,
    log: WriteLog,
}

impl Keyspace {
    pub fn new(loaded: u64) -> Self {
        Keyspace {
            loaded,
            next_insert: AtomicU64::new(loaded),
            stride: 1,
            inserted: Mutex::new(VecDeque::new()),
            stream: None,
        }
    }

    /// The keyspace of one shard of a sharded run: its inserts take ids no other shard
    /// takes.
    pub fn sharded(loaded: u64, shard: super::shard::Shard) -> Self {
        Keyspace {
            next_insert: AtomicU64::new(loaded + shard.index as u64),
            stride: shard.count as u64,
            ..Keyspace::new(loaded)
        }
    }

    /// A keyspace whose records `loaded..total` are held out, to be inserted in an order
    /// drawn from `seed`.
    pub fn streaming(loaded: u64, total: u64, seed: u64) -> Self {
        use rand::seq::SliceRandom;
        let mut held_out: Vec<u64> = (loaded..total).collect();
        held_out.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x57_4EA4));
        let state = StreamState { live: (0..loaded).collect(), log: WriteLog::default() };
        Keyspace {
            stream: Some(Stream { held_out, next: AtomicU64::new(0), state: Mutex::new(state) }),
            ..Keyspace::new(loaded)
        }
    }

    pub fn is_streaming(&self) -> bool {
        self.stream.is_some()
    }

    /// Held-out records not yet handed to an insert.
    pub fn held_out_left(&self) -> usize {
        self.stream.as_ref().map_or(0, |s| s.held_out.len().saturating_sub(s.next.load(Ordering::Relaxed) as usize))
    }

    /// The acknowledged writes so far.
    pub fn log(&self) -> WriteLog {
        self.stream.as_ref().map(|s| s.state.lock().expect("stream lock").log.clone()).unwrap_or_default()
    }

    /// One past the highest id a get, scan or update may pick (streaming: the loaded ids).
    pub fn high(&self) -> u64 {
        match self.stream {
            Some(_) => self.loaded,
            // One past the newest id this process inserted (a shard's own ids are `stride`
            // apart; ids between them are other shards').
            None => (self.next_insert.load(Ordering::Relaxed) + 1).saturating_sub(self.stride).max(self.loaded),
        }
    }
    pub(crate) fn next_id(&self) -> u64 {
        self.next_insert.fetch_add(self.stride, Ordering::Relaxed)
    }

    /// Insert `id`, sent at `sent`, was acknowledged at `at`.
    pub fn inserted(&self, id: u64, sent: Instant, at: Instant) {
        match &self.stream {
            Some(s) => {
                let mut st = s.state.lock().expect("stream lock");
                st.live.push(id);
                st.log.inserted.insert(id, at);
                st.log.insert_sent.insert(id, sent);
            }
            None => self.inserted.lock().expect("keyspace lock").push_back(id),
        }
    }

    /// Delete `id`, sent at `sent`, was acknowledged at `at` (streaming; elsewhere
    /// nothing to log).
    pub fn deleted(&self, id: u64, sent: Instant, at: Instant) {
        if let Some(s) = &self.stream {
            let mut st = s.state.lock().expect("stream lock");
            st.log.deleted.insert(id, at);
            st.log.delete_sent.insert(id, sent);
        }
    }

    /// Delete `id` failed: it may be taken again (streaming).
    pub fn delete_failed(&self, id: u64) {
        if let Some(s) = &self.stream {
            s.state.lock().expect("stream lock").live.push(id);
        }
    }

    fn take_deletable(&self, rng: &mut ChaCha8Rng) -> Option<u64> {
        match &self.stream {
            Some(s) => {
                let mut st = s.state.lock().expect("stream lock");
                (!st.live.is_empty()).then(|| {
                    let i = rng.gen_range(0..st.live.len());
                    st.live.swap_remove(i)
                })
            }
            None => self.inserted.lock().expect("keyspace lock").pop_front(),
        }
    }

    fn take_held_out(&self) -> Option<u64> {
        let s = self.stream.as_ref()?;
        let i = s.next.fetch_add(1, Ordering::Relaxed) as usize;
        s.held_out.get(i).copied()
    }
}

/// YCSB's zipfian generator (Gray et al., "Quickly generating billion-record synthetic
/// databases"), over ranks 0..n with skew theta.
#[derive(Debug, Clone)]
pub struct Zipfian {
    n: u64,
    theta: f64,
    alpha: f64,
    zeta_n: f64,
    eta: f64,
}

impl Zipfian {
    pub fn new(n: u64, theta: f64) -> Self {
        let n = n.max(1);
        let zeta = |n: u64| (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum::<f64>();
        let zeta_n = zeta(n);
        let zeta_2 = zeta(2.min(n));
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta_2 / zeta_n);
        Zipfian { n, theta, alpha, zeta_n, eta }
    }

    /// A rank in 0..n; 0 is the most popular.
    pub fn sample(&self, rng: &mut impl Rng) -> u64 {
        let u: f64 = rng.gen();
        let uz = u * self.zeta_n;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.n - 1);
        }
        let r = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        r.min(self.n - 1)
    }
}

/// FNV-1a of the rank, so that popular keys are spread over the id space (YCSB's
/// scrambled zipfian) instead of all sitting at the low ids.
fn scramble(rank: u64) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in rank.to_le_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// One op of a phase, ready to produce requests.
pub struct PreparedOp {
    pub plan: OpPlan,
    /// Exact kNN truth per query (knn and hybrid), computed for this op's k and filter.
    pub truth: Option<Arc<Vec<Vec<u64>>>>,
    /// With records held out: the truth over the records live at any moment, in place of
    /// `truth` (answers are then scored after the phase, `stream::score_answers`).
    pub live: Option<Arc<crate::data::live::LiveTruth>>,
    zipf: Option<Zipfian>,
    /// Range of values written by update / read_modify_write.
    write_range: (i64, i64),
    /// Next query for `QueryOrder::Cycle`, shared by the workers.
    cursor: AtomicU64,
    /// The queries this op asks (indices into the dataset's), when not all of them: a
    /// tuning or held-out split.
    queries: Option<Arc<Vec<usize>>>,
}

/// The owned data behind one request; `as_op` borrows from it.
pub enum Request {
    Query { query: usize },
    Id { id: u64 },
    Scan { start: u64 },
    Insert { record: Record },
    Write { id: u64, value: i64 },
    NothingToDelete,
    NothingToInsert,
}

impl Request {
    /// Why there is no request to send, for a `NothingTo...` one.
    pub fn nothing_to_do(&self) -> Option<&'static str> {
        match self {
            Request::NothingToDelete => {
                Some("delete found no record inserted by this run; give insert a weight at least that of delete")
            }
            Request::NothingToInsert => Some("insert found no held-out record left: every one is in"),
            _ => None,
        }
    }
}

impl PreparedOp {
    pub fn new(
        plan: OpPlan,
        truth: Option<Arc<Vec<Vec<u64>>>>,
        keyspace_size: u64,
        attributes: &[AttributePlan],
    ) -> Self {
        let zipf = matches!(plan.keys, KeyChoice::Zipfian | KeyChoice::Latest)
            .then(|| Zipfian::new(keyspace_size, plan.zipf_theta));
        let write_range = plan
            .field
            .as_ref()
            .and_then(|f| attributes.iter().find(|a| &a.def.name == f))
            .map(|a| match a.gen {
                AttributeGen::Integer { min, max } => (min, max),
                // The runner passes attributes read from the data as the range they span.
                AttributeGen::Keyword { .. } | AttributeGen::Data { .. } => (0, 0),
            })
            .unwrap_or((0, 0));
        PreparedOp { plan, truth, live: None, zipf, write_range, cursor: AtomicU64::new(0), queries: None }
    }

    /// Score against the records live when each search is sent.
    pub fn with_live(mut self, live: Option<Arc<crate::data::live::LiveTruth>>) -> Self {
        self.live = live;
        self
    }

    /// Ask only these queries (indices into the dataset's queries).
    pub fn with_queries(mut self, queries: Option<Arc<Vec<usize>>>) -> Self {
        self.queries = queries.filter(|q| !q.is_empty());
        self
    }

    fn choose_id(&self, rng: &mut ChaCha8Rng, keys: &Keyspace) -> u64 {
        let high = keys.high().max(1);
        match (self.plan.keys, &self.zipf) {
            (KeyChoice::Zipfian, Some(z)) => scramble(z.sample(rng)) % high,
            (KeyChoice::Latest, Some(z)) => high - 1 - z.sample(rng).min(high - 1),
            _ => rng.gen_range(0..high),
        }
    }

    /// Choose what the next request of this op is about.
    pub fn next_request(&self, rng: &mut ChaCha8Rng, ds: &Dataset, keys: &Keyspace) -> Request {
        match self.plan.kind {
            OpKind::Knn | OpKind::Text | OpKind::Hybrid | OpKind::Expand => {
                let n = self.queries.as_ref().map_or(ds.queries.len(), |q| q.len()).max(1);
                let nth = match self.plan.query_order {
                    QueryOrder::Random => rng.gen_range(0..n),
                    QueryOrder::Cycle => (self.cursor.fetch_add(1, Ordering::Relaxed) % n as u64) as usize,
                };
                Request::Query { query: self.queries.as_ref().map_or(nth, |q| q[nth]) }
            }
            OpKind::Get => Request::Id { id: self.choose_id(rng, keys) },
            OpKind::Scan => Request::Scan { start: self.choose_id(rng, keys) },
            OpKind::Update | OpKind::ReadModifyWrite => Request::Write {
                id: self.choose_id(rng, keys),
                value: rng.gen_range(self.write_range.0..=self.write_range.1),
            },
            OpKind::Insert if keys.is_streaming() => match keys.take_held_out() {
                // A held-out record, as it is in the data.
                Some(id) => Request::Insert { record: ds.record(id as usize) },
                None => Request::NothingToInsert,
            },
            OpKind::Insert => {
                // A new record shaped like a random existing one, under a fresh id.
                let src = rng.gen_range(0..ds.len());
                let mut record = ds.record(src);
                record.id = keys.next_id();
                Request::Insert { record }
            }
            OpKind::Delete => match keys.take_deletable(rng) {
                Some(id) => Request::Id { id },
                None => Request::NothingToDelete,
            },
        }
    }

    /// The request as an `Op`. `None` for a delete with nothing of this run's to delete.
    pub fn as_op<'a>(&'a self, req: &'a Request, ds: &'a Dataset) -> Option<Op<'a>> {
        let p = &self.plan;
        let filter = p.filter.as_ref();
        let field = p.field.as_deref().unwrap_or("");
        Some(match (p.kind, req) {
            (OpKind::Knn, Request::Query { query }) => {
                Op::Knn { vector: ds.query_vector(*query), k: p.k, filter, params: &p.params }
            }
            (OpKind::Text, Request::Query { query }) => {
                Op::Text { query: &ds.queries.texts[*query], k: p.k, filter, params: &p.params }
            }
            (OpKind::Hybrid, Request::Query { query }) => Op::Hybrid {
                vector: ds.query_vector(*query),
                query: &ds.queries.texts[*query],
                k: p.k,
                filter,
                params: &p.params,
            },
            (OpKind::Expand, Request::Query { query }) => {
                let e = p.expand?;
                Op::Expand {
                    vector: ds.query_vector(*query),
                    seeds: e.seeds,
                    hops: e.hops,
                    max_results: p.k,
                    filter,
                    params: &p.params,
                }
            }
            (OpKind::Get, Request::Id { id }) => Op::Get { id: *id },
            (OpKind::Delete, Request::Id { id }) => Op::Delete { id: *id },
            (OpKind::Scan, Request::Scan { start }) => Op::Scan { start: *start, limit: p.scan_length },
            (OpKind::Insert, Request::Insert { record }) => Op::Insert { record },
            (OpKind::Update, Request::Write { id, value }) => {
                Op::Update { id: *id, field, value: AttrValue::Integer(*value) }
            }
            (OpKind::ReadModifyWrite, Request::Write { id, value }) => {
                Op::ReadModifyWrite { id: *id, field, value: AttrValue::Integer(*value) }
            }
            _ => return None,
        })
    }
}

/// Weighted choice among a phase's ops.
pub struct Mix {
    dist: WeightedIndex<f64>,
}

impl Mix {
    pub fn new(weights: &[f64]) -> Self {
        Mix { dist: WeightedIndex::new(weights).expect("weights validated positive") }
    }
    pub fn pick(&self, rng: &mut ChaCha8Rng) -> usize {
        self.dist.sample(rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn zipfian_is_skewed_like_ycsb() {
        let z = Zipfian::new(1000, 0.99);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[z.sample(&mut rng) as usize] += 1;
        }
        // With theta 0.99 over 1000 items the top rank takes about 1/zeta(1000) ~ 13%.
        assert!((10_000..16_000).contains(&counts[0]), "rank 0: {}", counts[0]);
        assert!(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[500]);
        let top10: u32 = counts[..10].iter().sum();
        assert!(top10 > 30_000, "top 10 ranks: {top10}");
    }

    #[test]
    fn shards_insert_ids_no_other_shard_inserts() {
        use crate::runner::shard::Shard;
        let mut seen = std::collections::HashSet::new();
        for index in 0..3 {
            let keys = Keyspace::sharded(100, Shard { index, count: 3 });
            for _ in 0..10 {
                let id = keys.next_id();
                assert!(id >= 100, "never a loaded id");
                assert!(seen.insert(id), "id {id} taken twice");
            }
        }
        assert_eq!(seen.len(), 30);
        assert!((100..130).all(|id| seen.contains(&id)), "together they fill the ids one process would take");
    }

    #[test]
    fn deletes_only_take_ids_this_run_inserted() {
        let keys = Keyspace::new(100);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(keys.take_deletable(&mut rng), None);
        let a = keys.next_id();
        let b = keys.next_id();
        assert_eq!((a, b), (100, 101));
        keys.inserted(a, Instant::now(), Instant::now());
        keys.inserted(b, Instant::now(), Instant::now());
        assert_eq!(keys.take_deletable(&mut rng), Some(100));
        assert_eq!(keys.high(), 102);
    }

    #[test]
    fn a_streaming_keyspace_inserts_each_held_out_record_once_and_logs_acknowledgements() {
        let keys = Keyspace::streaming(10, 20, 5);
        let mut taken: Vec<u64> = std::iter::from_fn(|| keys.take_held_out()).collect();
        assert_ne!(taken, (10..20).collect::<Vec<_>>(), "a seeded order, not file order");
        taken.sort();
        assert_eq!(taken, (10..20).collect::<Vec<_>>());
        assert_eq!(keys.held_out_left(), 0);
        assert_eq!(keys.high(), 10, "gets and updates pick loaded records");

        let t0 = Instant::now();
        let t1 = t0 + std::time::Duration::from_millis(5);
        keys.inserted(12, t0, t1);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let gone = keys.take_deletable(&mut rng).unwrap();
        keys.deleted(gone, t0, t1);
        let log = keys.log();
        assert!(!log.live_at(12, 10, t0) && log.live_at(12, 10, t1), "live from its acknowledgement");
        assert!(log.live_at(gone, 10, t0) && !log.live_at(gone, 10, t1));
        // In flight at t0 (sent, not acknowledged): either way is right.
        assert!(log.live_at_with_in_flight(12, 10, t0) && !log.live_at_with_in_flight(gone, 10, t0));
        let before = t0 - std::time::Duration::from_millis(1);
        assert!(!log.live_at_with_in_flight(12, 10, before) && log.live_at_with_in_flight(gone, 10, before));
        assert_eq!((log.live_count_at(10, t0), log.live_count_at(10, t1)), (10, 10));
        let mut rest: Vec<u64> = std::iter::from_fn(|| keys.take_deletable(&mut rng)).collect();
        rest.sort();
        assert!(rest.len() == 10 && !rest.contains(&gone), "each live record deleted at most once: {rest:?}");
    }
}
