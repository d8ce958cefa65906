//! `Service` and `Attached`: a registered service, and a live connection to one.

use super::attributes::Attributes;
use super::conn::{BoxConn, dial};
use super::error::{Error, Result};
use std::fmt;
use std::path::Path;

/// A service as a registry lists it: where to reach it, and its description.
///
/// ```
/// use registries::{Attributes, Service};
/// let svc = Service::new("tcp!myhost!7001", Attributes::new([("proto", "styx")]));
/// assert_eq!(svc.attrs.get("proto"), Some("styx"));
/// assert_eq!(svc.to_string(), "tcp!myhost!7001 proto styx");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Service {
    /// Where the service can be reached, usually a dial string (`tcp!host!port`).
    pub addr: String,
    /// The service's attributes (its complete description).
    pub attrs: Attributes,
}

impl Service {
    /// The services of an `index` or `find` reply, as registries(2)'s `readservices` reads them.
    pub(crate) fn parse_all(text: &str) -> Vec<Service> {
        // One line a service: room for all of them at once, rather than doubling a large
        // vector a dozen times over.
        let mut out = Vec::with_capacity(memchr::memchr_iter(b'\n', text.as_bytes()).count());
        crate::wire::each_service(text, |addr, pairs| {
            out.push(Service {
                addr: addr.to_string(),
                attrs: Attributes::from_words(pairs),
            });
        });
        out
    }
}

/// A connection to a service, made by [`Service::attach`].
///
/// ```no_run
/// # async fn demo(svc: registries::Service) -> Result<(), registries::Error> {
/// use tokio::io::AsyncWriteExt;
/// let mut attached = svc.attach(None, None).await?; // infpk1 first when `auth infpk1`
/// attached.fd.write_all(b"hello\n").await?;
/// # Ok(()) }
/// ```
pub struct Attached {
    /// The connection: read and write it to talk to the service (often 9P).
    pub fd: BoxConn,
    /// Hex SHA-1 of the signer's public key, when public-key authentication was done.
    pub signerpkhash: Option<String>,
    /// The local user name used for authentication, when authentication was done.
    pub localuser: Option<String>,
    /// The remote identity of the connection, when authentication was done.
    pub remoteuser: Option<String>,
}

impl fmt::Debug for Attached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attached")
            .field("signerpkhash", &self.signerpkhash)
            .field("localuser", &self.localuser)
            .field("remoteuser", &self.remoteuser)
            .finish_non_exhaustive()
    }
}

/// How to authenticate, from a service's `auth` attribute.
#[derive(Debug, PartialEq, Eq)]
enum AuthKind {
    /// Missing, empty or `none`: the raw connection.
    None,
    /// `infpk1`, or the old spelling `auth`.
    Infpk1,
}

fn auth_kind(attrs: &Attributes) -> Result<AuthKind> {
    match attrs.get("auth") {
        None | Some("") | Some("none") => Ok(AuthKind::None),
        Some("infpk1") | Some("auth") => Ok(AuthKind::Infpk1),
        Some(other) => Err(Error::UnknownAuth(crate::wire::quote(other))),
    }
}

impl Service {
    /// A service at `addr` described by `attrs`.
    pub fn new(addr: impl Into<String>, attrs: Attributes) -> Service {
        Service {
            addr: addr.into(),
            attrs,
        }
    }

    /// Dials the service and authenticates as its `auth` attribute asks (registries(2)
    /// `Service.attach`): missing, empty or `none` gives the raw connection; `infpk1` (or the old
    /// `auth`) runs infpk1 with `auth.crypt` and `auth.signer`, using `user` and `keydir` to find
    /// keys; anything else is `unknown authentication type`. As in Limbo, the address is dialled
    /// first.
    pub async fn attach(&self, user: Option<&str>, keydir: Option<&Path>) -> Result<Attached> {
        let fd = dial(&self.addr).await?;
        match auth_kind(&self.attrs)? {
            AuthKind::None => Ok(Attached {
                fd,
                signerpkhash: None,
                localuser: None,
                remoteuser: None,
            }),
            AuthKind::Infpk1 => self.authenticate(fd, user, keydir).await,
        }
    }

    /// The infpk1 client side, by `crate::auth`: keys chosen by `auth.signer` (and `user`) in
    /// `keydir`, algorithm `auth.crypt` (default `none`).
    async fn authenticate(
        &self,
        fd: BoxConn,
        user: Option<&str>,
        keydir: Option<&Path>,
    ) -> Result<Attached> {
        use crate::auth::attach::{AuthAttrs, authenticate};
        let attrs = AuthAttrs {
            auth: self.attrs.get("auth"),
            crypt: self.attrs.get("auth.crypt"),
            signer: self.attrs.get("auth.signer"),
        };
        let a = authenticate(fd, attrs, user, keydir)
            .await
            .map_err(|e| Error::Auth(e.to_string()))?;
        Ok(Attached {
            fd: Box::new(a.stream),
            signerpkhash: a.signerpkhash,
            localuser: a.localuser,
            remoteuser: a.remoteuser,
        })
    }
}

/// Formats as a registry line without the newline: `addr attr val ...`.
impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::wire::quote(&self.addr))?;
        if !self.attrs.is_empty() {
            write!(f, " {}", self.attrs)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_kinds() {
        let k = |v: Option<&str>| {
            let mut a = Attributes::default();
            if let Some(v) = v {
                a.set("auth", v);
            }
            auth_kind(&a)
        };
        assert_eq!(k(None).unwrap(), AuthKind::None);
        assert_eq!(k(Some("")).unwrap(), AuthKind::None);
        assert_eq!(k(Some("none")).unwrap(), AuthKind::None);
        assert_eq!(k(Some("infpk1")).unwrap(), AuthKind::Infpk1);
        assert_eq!(k(Some("auth")).unwrap(), AuthKind::Infpk1);
        let e = k(Some("sesame seed")).unwrap_err();
        assert_eq!(e.to_string(), "unknown authentication type 'sesame seed'");
    }

    #[tokio::test]
    async fn attach_none_gives_raw_connection() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let svc = Service::new(
            format!("tcp!127.0.0.1!{port}"),
            Attributes::new([("auth", "none")]),
        );
        let a = svc.attach(None, None).await.unwrap();
        assert!(a.remoteuser.is_none() && a.signerpkhash.is_none());
        let bad = Service::new(
            format!("tcp!127.0.0.1!{port}"),
            Attributes::new([("auth", "rot13")]),
        );
        let e = bad.attach(None, None).await.unwrap_err();
        assert_eq!(e.to_string(), "unknown authentication type rot13");
    }

    #[test]
    fn display_is_a_registry_line() {
        let s = Service::new("a b", Attributes::new([("x", "")]));
        assert_eq!(s.to_string(), "'a b' x ''");
    }
}
