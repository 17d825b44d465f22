//! The one holder of a driver's prepared state: set by `prepare`, read by every request,
//! taken by `cleanup`.
//!
//! Requests only clone an `Arc` out of it, under a read lock held for nanoseconds, so
//! workers never wait on each other here. It must never do I/O or hold the lock across
//! an await.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{DriverError, DriverResult};

/// A driver's state after `prepare` (its schema, the engine object it created, URLs...).
pub struct Prepared<S> {
    /// The driver's kind, for the "prepare was not called" error.
    engine: &'static str,
    slot: RwLock<Option<Arc<S>>>,
}

impl<S> Prepared<S> {
    pub const fn new(engine: &'static str) -> Self {
        Prepared { engine, slot: RwLock::new(None) }
    }

    // The slot only ever holds a whole `Option<Arc<S>>` that is swapped, never half
    // written, so a panic elsewhere while it was locked cannot leave it inconsistent:
    // a poisoned lock is still safe to use.
    fn read(&self) -> RwLockReadGuard<'_, Option<Arc<S>>> {
        self.slot.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Option<Arc<S>>> {
        self.slot.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The state, or an error saying `prepare` has not run (or `cleanup` already did).
    pub fn get(&self) -> DriverResult<Arc<S>> {
        self.peek().ok_or_else(|| DriverError::other(format!("{}: prepare was not called", self.engine)))
    }

    /// The state if there is one (for `describe`, which also runs before `prepare`).
    pub fn peek(&self) -> Option<Arc<S>> {
        self.read().clone()
    }

    /// Install the state `prepare` built.
    pub fn set(&self, state: S) {
        *self.write() = Some(Arc::new(state));
    }

    /// Remove the state (for `cleanup`, or for `prepare` to close what it replaces).
    pub fn take(&self) -> Option<Arc<S>> {
        self.write().take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_there_only_between_set_and_take() {
        let p: Prepared<u32> = Prepared::new("engine");
        let err = p.get().expect_err("not prepared yet");
        assert_eq!(err.message, "engine: prepare was not called");
        assert!(p.peek().is_none());
        p.set(7);
        assert_eq!(*p.get().expect("prepared"), 7);
        assert_eq!(p.take().map(|s| *s), Some(7));
        assert!(p.get().is_err() && p.take().is_none());
    }
}
