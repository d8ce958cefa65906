//! The etcd client's one error type.

/// Why an etcd call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EtcdError {
    /// No endpoint answered within the call's deadline (members down, no leader, network).
    #[error("etcd unavailable: {0}")]
    Unavailable(String),
    /// An endpoint is not something we can dial (`host:port` or `http://host:port`).
    #[error("bad etcd endpoint {endpoint:?}: {why}")]
    Endpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it was refused.
        why: String,
    },
    /// etcd answered, and refused: the request itself is wrong, or the revision it asked for is
    /// gone.
    #[error("etcd refused: {0}")]
    Refused(String),
}

impl EtcdError {
    /// Whether trying another endpoint, or the same one later, may succeed.
    pub(crate) fn retryable(status: &tonic::Status) -> bool {
        use tonic::Code;
        matches!(
            status.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Unknown
                | Code::Internal
                | Code::Aborted
                | Code::ResourceExhausted
                | Code::Cancelled
        )
    }
}
