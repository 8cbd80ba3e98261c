//! Locking shared state that a panicking thread may have left poisoned.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, taking the value over from a thread that panicked while holding it: every value
/// behind these locks is complete after each single assignment, so poisoning carries no meaning.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
