//! Rendered `find` answers (and the `index`, the answer to the empty query), kept until the next
//! visible change and shared by every reader of the same query: a thousand readers of a large
//! `index` hold one copy of it, and only the first read after a change pays for rendering.

use bytes::Bytes;

/// The answers rendered since the last change, newest last.
#[derive(Debug, Default)]
pub(super) struct Answers {
    kept: Vec<(Vec<(String, String)>, Bytes)>,
}

impl Answers {
    /// Most distinct queries whose answers are kept at once; the oldest goes first. Each is at
    /// most the size of the `index`, so this bounds what the cache holds to a few `index`es.
    pub(super) const MAX_KEPT: usize = 8;

    /// The answer to `query`, if it was rendered since the last change.
    pub(super) fn get(&self, query: &[(String, String)]) -> Option<Bytes> {
        self.kept
            .iter()
            .find(|(q, _)| q.as_slice() == query)
            .map(|(_, text)| text.clone())
    }

    /// Keeps `text` as the answer to `query`.
    pub(super) fn keep(&mut self, query: &[(String, String)], text: Bytes) {
        if self.kept.len() >= Self::MAX_KEPT {
            self.kept.remove(0);
        }
        self.kept.push((query.to_vec(), text));
    }

    /// Forgets every answer: the catalog changed.
    pub(super) fn clear(&mut self) {
        self.kept.clear();
    }
}
