//! The process's figures when the `metrics` feature is off: the same calls as with it, doing
//! nothing, so that the layers count unconditionally and a client-only build carries no
//! Prometheus registry.

use std::time::Duration;

/// Most distinct values one free-text label takes (as with `metrics`; unused here).
pub const MAX_LABEL_VALUES: usize = 64;

/// One connection open on a listener; counts nothing without `metrics`.
#[derive(Debug)]
pub struct OpenConnection;

impl OpenConnection {
    /// Counts nothing.
    pub fn new(_listener: &'static str) -> OpenConnection {
        OpenConnection
    }
}

// The callers drop these guards where the count must end; with `metrics` they have a Drop.
impl Drop for OpenConnection {
    fn drop(&mut self) {}
}

/// A held read; counts nothing without `metrics`.
#[derive(Debug)]
pub struct WaitingRead;

impl WaitingRead {
    /// Counts nothing.
    pub fn new(_kind: &'static str) -> WaitingRead {
        WaitingRead
    }
}

impl Drop for WaitingRead {
    fn drop(&mut self) {}
}

/// A limit bit; counts nothing without `metrics`.
pub fn limit_hit(_limit: &'static str) {}

/// A limit bit `n` times; counts nothing without `metrics`.
pub fn limit_hits(_limit: &'static str, _n: u64) {}

/// A listener at its cap; counts nothing without `metrics`.
pub fn cap_reached(_listener: &'static str) {}

/// A 9P request answered; counts nothing without `metrics`.
pub fn styx_request(_name: &'static str, _took: Duration, _rerror: Option<&str>) {}

/// An authentication ended; counts nothing without `metrics`.
pub fn authentication(_result: Result<(), &str>) {}

/// A lease session expiry; counts nothing without `metrics`.
pub fn store_session_expired() {}

/// A write that got no answer, settled; counts nothing without `metrics`.
pub fn store_write_settled(_applied: bool) {}
