//! The registry's diagnostics: the texts Inferno's registry(4) puts in its `Rerror`s, as one enum
//! that the server returns and the client matches.

/// Why the registry refused an operation. `Display` gives Inferno's text verbatim, which is what
/// goes into an `Rerror`; [`Diagnostic::from_text`] maps a received text back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Diagnostic {
    /// A service name holds a character `<= ' '`, `/` or DEL.
    #[error("bad character in service name")]
    BadChar,
    /// A service name is empty or one of the reserved names `new`, `event`, `find`, `index`.
    #[error("bad service name")]
    BadName,
    /// Another service has the name already.
    #[error("duplicate service name")]
    Duplicate,
    /// The words after the name (or of a query) are not pairs.
    #[error("odd attribute/value pairs")]
    OddPairs,
    /// A write holds no words at all.
    #[error("bad syntax")]
    BadSyntax,
    /// A write to a service that is gone (Inferno's `Egreg`).
    #[error("buggy program!")]
    Gone,
    /// Only a service's owner may remove it.
    #[error("permission denied")]
    PermissionDenied,
    /// The file or service does not exist (any more).
    #[error("file does not exist")]
    NotFound,
    /// `registry serve --etcd` cannot reach etcd, so it cannot commit a change (reads still work).
    #[error("registry store unavailable")]
    StoreUnavailable,
    /// A registration of `registry serve --etcd` lapsed while its front-end was cut off from etcd,
    /// and another took the name meanwhile.
    #[error("service name taken by another registry")]
    Taken,
    /// Any other text a registry sent (an older or foreign registry, or a diagnostic of the 9P
    /// layer), verbatim.
    #[error("{0}")]
    Other(String),
}

impl Diagnostic {
    /// Every diagnostic with a fixed text, for mapping texts back.
    const KNOWN: [Diagnostic; 10] = [
        Diagnostic::BadChar,
        Diagnostic::BadName,
        Diagnostic::Duplicate,
        Diagnostic::OddPairs,
        Diagnostic::BadSyntax,
        Diagnostic::Gone,
        Diagnostic::PermissionDenied,
        Diagnostic::NotFound,
        Diagnostic::StoreUnavailable,
        Diagnostic::Taken,
    ];

    /// The diagnostic whose text is `text`, or [`Diagnostic::Other`] holding it.
    pub fn from_text(text: &str) -> Diagnostic {
        Diagnostic::KNOWN
            .into_iter()
            .find(|d| d.to_string() == text)
            .unwrap_or_else(|| Diagnostic::Other(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip() {
        for d in Diagnostic::KNOWN {
            assert_eq!(Diagnostic::from_text(&d.to_string()), d);
        }
        assert_eq!(
            Diagnostic::from_text("not implemented yet"),
            Diagnostic::Other("not implemented yet".into())
        );
        assert_eq!(Diagnostic::Duplicate.to_string(), "duplicate service name");
    }
}
