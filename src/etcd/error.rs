//! The etcd client's one error type.

/// Why an etcd call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EtcdError {
    /// No endpoint answered within the call's deadline, and the request never reached one (no
    /// connection could be made, or etcd refused it before proposing it): it was not applied.
    #[error("etcd unavailable: {0}")]
    Unavailable(String),
    /// No answer within the call's deadline after the request may have reached a member (it was
    /// written on an open connection that then went silent, or etcd timed out its proposal):
    /// it may yet be applied, now or later.
    #[error("etcd did not answer: {0}")]
    Unknown(String),
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
    /// Whether the request may have been applied although the call failed.
    pub(crate) fn outcome_unknown(&self) -> bool {
        matches!(self, EtcdError::Unknown(_))
    }

    /// Whether a failed attempt cannot have reached etcd: no connection could be made, so the
    /// request was never written. tonic reports a failed connect as `Unavailable` whose source
    /// chain holds the connector's error; anything else (a stream reset, a timeout on an open
    /// connection, etcd's own errors) may come after the request left.
    pub(crate) fn never_sent(status: &tonic::Status) -> bool {
        // hyper-util's connector says "tcp connect error" for a refused connection and for
        // one that timed out alike (tonic's `connect_timeout`); tonic passes that text on as the
        // status message and keeps the error as its source.
        const CONNECT: &str = "tcp connect error";
        if status.code() != tonic::Code::Unavailable {
            return false;
        }
        if status.message().contains(CONNECT) {
            return true;
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> =
            std::error::Error::source(status);
        while let Some(e) = source {
            if e.to_string().contains(CONNECT) {
                return true;
            }
            source = e.source();
        }
        false
    }

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
