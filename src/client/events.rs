//! `Events`: the registry's change notifications as a stream.

use super::error::Result;
use super::transport::EventHandle;
use futures_util::Stream;
use futures_util::stream::BoxStream;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The registry's change counter, once per coalesced change (spec/registry.md §5). The counter was
/// captured when the stream was made, so a change made after that is never missed. After an
/// error the stream ends.
pub struct Events {
    inner: BoxStream<'static, Result<u64>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    pub(crate) fn new(handle: EventHandle) -> Events {
        let inner = futures_util::stream::unfold(Some(handle), |state| async move {
            let mut handle = state?;
            match handle.next().await {
                Ok(n) => Some((Ok(n), Some(handle))),
                Err(e) => Some((Err(e), None)),
            }
        });
        Events {
            inner: Box::pin(inner),
        }
    }
}

impl Stream for Events {
    type Item = Result<u64>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}
