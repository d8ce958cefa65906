//! Networking in one place: Inferno dial strings ([`Addr`]), dialling ([`dial()`]), listening
//! ([`Listener`]) and the one accept loop every listener of the crate runs ([`serve`]): the 9P
//! registry's, the shim's three ports, and anyone's who serves the 9P library.
//!
//! Nothing here knows a protocol: a listener hands each accepted [`Stream`] to a handler.

mod accept;
mod addr;
mod dial;
mod keepalive;
mod listen;

pub use accept::{Accepting, AtCap, serve, settle_flag};
pub use addr::{Addr, DEFAULT_REGISTRY, DialError, SERVICES, netmkaddr, service_port};
pub use dial::{dial, dial_tcp};
pub use keepalive::{
    KEEPALIVE_DETECTION, KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_RETRIES, set_keepalive,
};
pub use listen::{Listener, Stream};
