//! `Registered`: a live registration.

use super::attributes::Attributes;
use super::error::{Error, Result};
use super::registry::Registry;
use super::transport::RegHandle;

/// A service this process registered. It holds the registry's `new` file open: dropping it, or
/// [`Registered::close`], closes that file, and the registry then removes the service unless it
/// has a non-zero `persist` attribute.
///
/// ```no_run
/// # async fn demo(reg: registries::Registry) -> Result<(), registries::Error> {
/// use registries::Attributes;
/// let mut me = reg.register("tcp!myhost!7001", &Attributes::new([("load", "0")]), false).await?;
/// me.update(&Attributes::new([("load", "5")])).await?;
/// me.close().await?; // unregistered (as when `me` is dropped)
/// # Ok(()) }
/// ```
pub struct Registered {
    /// The service's name, as registered.
    pub addr: String,
    /// The registry it is registered with.
    pub reg: Registry,
    /// The open registration file; `None` once closed.
    fd: Option<RegHandle>,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("addr", &self.addr)
            .field("reg", &self.reg)
            .finish_non_exhaustive()
    }
}

impl Registered {
    pub(crate) fn new(addr: String, reg: Registry, fd: RegHandle) -> Registered {
        Registered {
            addr,
            reg,
            fd: Some(fd),
        }
    }

    /// Adds or changes the service's attributes (one write of `attr val ...` to the file).
    pub async fn update(&mut self, attrs: &Attributes) -> Result<()> {
        self.write(&attrs.to_string()).await
    }

    /// Writes `text` to the registration file as it is (registry(4) takes `attr val ...`).
    pub async fn write(&mut self, text: &str) -> Result<()> {
        match &mut self.fd {
            Some(fd) => self.reg.limit("update", fd.write(text.to_string())).await,
            None => Err(Error::Unsupported("registration already closed")),
        }
    }

    /// Closes the registration file and waits until the registry has been told, so that (unless
    /// the service persists) it is gone when this returns.
    pub async fn close(mut self) -> Result<()> {
        match self.fd.take() {
            Some(fd) => fd.close().await,
            None => Ok(()),
        }
    }
}
