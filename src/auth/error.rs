//! The one error type of the auth layer.
//!
//! Where Inferno has a diagnostic for a case, the `Display` text is Inferno's exact string
//! (spec/infpk1.md §4.2, §4.3, §5.2, §6.7, §7.2, §7.3), because users and logs compare them with
//! what stock Inferno prints.

/// Everything that can go wrong in key files, infpk1, algorithm negotiation and ssl records.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The peer's version message was not `1` (§4.2 step 2).
    #[error("incompatible authentication protocol")]
    IncompatibleProtocol,
    /// The peer's `alpha**r` was not a plausible value (≥ p, ≤ 1, or unparseable) (§4.2 step 8).
    #[error("implausible parameter value")]
    ImplausibleParameter,
    /// The peer sent back our own `alpha**r` (§4.2 step 8).
    #[error("possible replay attack")]
    PossibleReplay,
    /// The peer's certificate did not parse (§4.2 step 9).
    #[error("bad certificate syntax")]
    BadCertificateSyntax,
    /// The peer's public key did not parse (§4.2 step 10).
    #[error("bad public key")]
    BadPublicKey,
    /// The peer's key is not certified by our signer (§4.2 step 11).
    #[error("pk doesn't match certificate")]
    PkMismatch,
    /// The peer's certificate has expired (§4.2 step 12).
    #[error("certificate expired")]
    CertificateExpired,
    /// The peer's alpha-certificate did not parse (§4.2 step 14).
    #[error("alpha**r1 doesn't match certificate")]
    AlphaCertSyntax,
    /// The peer's alpha-certificate did not verify (§4.2 step 15).
    #[error("bad certificate")]
    BadCertificate,
    /// The peer reported an error, or failed after we succeeded; the text is the peer's,
    /// usually `remote: <reason>` (§4.3 b, c).
    #[error("{0}")]
    Remote(String),
    /// The connection ended before a message started (Inferno's `hungup`, §1.3).
    #[error("hungup")]
    Hungup,
    /// A message was cut short or had a malformed header (§1.3).
    #[error("input or format error")]
    Format,
    /// The server could not read the algorithm message (§5.2 step 2).
    #[error("can't read client ssl algorithm: {0}")]
    CantReadAlg(String),
    /// The client asked for an algorithm the server does not accept (§5.2 step 4).
    #[error("unsupported client algorithm: {0}")]
    UnsupportedAlg(String),
    /// An algorithm string named something devssl does not know (§5.4); Inferno's ssl push
    /// fails with Ebadarg.
    #[error("bad arg in system call: unknown ssl algorithm {0:?}")]
    UnknownAlg(String),
    /// The shared secret is too short for the chosen cipher (§5.4).
    #[error("secret too short")]
    SecretTooShort,
    /// A key, certificate or key file did not parse; the text says which part.
    #[error("{0}")]
    KeyText(String),
    /// DSA keys are refused: Inferno's DSA key text does not survive a round trip (§3.3).
    #[error("dsa keys are not supported (Inferno's dsa key text is broken)")]
    DsaUnsupported,
    /// An `auth.signer` or spkhash value that is not 40 characters (§7.2 step 1).
    #[error("invalid hash string")]
    InvalidHash,
    /// A key directory could not be listed (§7.2 step 2).
    #[error("can't open {dir}: {err}")]
    CantOpen {
        /// The directory.
        dir: String,
        /// The system's reason.
        err: std::io::Error,
    },
    /// No key in the key directory matched the signer (§7.3).
    #[error("no matching keys found{}", .0.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    NoMatchingKeys(Option<String>),
    /// No matching key belongs to the requested local user (§7.3).
    #[error("no matching user found")]
    NoMatchingUser,
    /// The service's `auth` attribute names an unknown scheme (§7.3).
    #[error("unknown authentication type {0}")]
    UnknownAuthType(String),
    /// Service.attach's wrapper around any authentication failure (§7.3).
    #[error("cannot authenticate: {0}")]
    CannotAuthenticate(Box<AuthError>),
    /// Key generation was asked for something it cannot make.
    #[error("{0}")]
    KeyGen(String),
    /// An ssl record was malformed or failed its MAC; the connection is dead (§6.7).
    #[error("{0}")]
    Record(&'static str),
    /// An I/O error from the underlying stream or a file.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl AuthError {
    /// A short fixed word for the kind of failure, for metrics labels: Inferno's text where it
    /// is fixed, a name of the variant where the text carries what the peer sent.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::IncompatibleProtocol => "incompatible authentication protocol",
            AuthError::ImplausibleParameter => "implausible parameter value",
            AuthError::PossibleReplay => "possible replay attack",
            AuthError::BadCertificateSyntax => "bad certificate syntax",
            AuthError::BadPublicKey => "bad public key",
            AuthError::PkMismatch => "pk doesn't match certificate",
            AuthError::CertificateExpired => "certificate expired",
            AuthError::AlphaCertSyntax => "alpha**r1 doesn't match certificate",
            AuthError::BadCertificate => "bad certificate",
            AuthError::Remote(_) => "remote",
            AuthError::Hungup => "hungup",
            AuthError::Format => "input or format error",
            AuthError::CantReadAlg(_) => "can't read client ssl algorithm",
            AuthError::UnsupportedAlg(_) => "unsupported client algorithm",
            AuthError::UnknownAlg(_) => "unknown ssl algorithm",
            AuthError::SecretTooShort => "secret too short",
            AuthError::KeyText(_) => "key text",
            AuthError::DsaUnsupported => "dsa",
            AuthError::InvalidHash => "invalid hash string",
            AuthError::CantOpen { .. } => "can't open key directory",
            AuthError::NoMatchingKeys(_) => "no matching keys found",
            AuthError::NoMatchingUser => "no matching user found",
            AuthError::UnknownAuthType(_) => "unknown authentication type",
            AuthError::CannotAuthenticate(_) => "cannot authenticate",
            AuthError::KeyGen(_) => "keygen",
            AuthError::Record(_) => "ssl record",
            AuthError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => "timed out",
            AuthError::Io(_) => "i/o",
        }
    }

    /// Shorthand for a key-text parse error.
    pub(crate) fn text(s: impl Into<String>) -> Self {
        AuthError::KeyText(s.into())
    }
}
