//! The handlers: the page, the metrics, the services as JSON and the change feed as
//! Server-Sent Events.

use super::State;
use crate::wire::{self, FeedRecord, FeedRequest, FeedStart};
use axum::extract::{Query, State as Shared};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde_json::json;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

/// The query words of `/v1/changes` that are not attribute filters.
const FROM: &str = "from";
const SNAPSHOT: &str = "snapshot";
/// How often an idle event stream sends a comment, so that a vanished client is noticed.
const SSE_KEEPALIVE: Duration = Duration::from_secs(15);

/// A 4xx answer with a one-line body.
fn refuse(status: StatusCode, why: &str) -> Response {
    (status, format!("{why}\n")).into_response()
}

/// The catalog is hidden from this HTTP side (`--auth` without `--http-public`).
fn hidden(state: &State) -> Option<Response> {
    (!state.show_catalog).then(|| {
        refuse(
            StatusCode::FORBIDDEN,
            "forbidden: this registry requires authentication (serve --http-public shows the \
             catalog over HTTP)",
        )
    })
}

pub(super) async fn page(Shared(state): Shared<State>) -> Response {
    if let Some(r) = hidden(&state) {
        return r;
    }
    Html(include_str!("page.html")).into_response()
}

pub(super) async fn metrics(Shared(state): Shared<State>) -> Response {
    let text = crate::metrics::render(&state.server.catalog_state());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

pub(super) async fn info(Shared(state): Shared<State>) -> Response {
    if let Some(r) = hidden(&state) {
        return r;
    }
    let s = &state.server;
    axum::Json(json!({
        "services": s.len(),
        "revision": s.revision(),
        "store": if s.uses_etcd() { "etcd" } else { "memory" },
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

pub(super) async fn services(
    Shared(state): Shared<State>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = hidden(&state) {
        return r;
    }
    let found: Vec<serde_json::Value> = state
        .server
        .services(&query)
        .iter()
        .map(super::super::ServiceInfo::to_json)
        .collect();
    axum::Json(found).into_response()
}

/// Where a `/v1/changes` request starts: `Last-Event-ID` (the browser's reconnection) wins,
/// then `from=REV`, then `snapshot=1`, else now.
fn start_of(headers: &HeaderMap, query: &mut Vec<(String, String)>) -> Result<FeedStart, String> {
    let mut start = FeedStart::Now;
    let mut rest = Vec::with_capacity(query.len());
    for (k, v) in query.drain(..) {
        match k.as_str() {
            FROM => {
                let rev = v
                    .parse()
                    .map_err(|_| format!("from={v:?}: not a revision"))?;
                start = FeedStart::From(rev);
            }
            SNAPSHOT if !matches!(start, FeedStart::From(_)) => match v.as_str() {
                "1" | "true" | "" => start = FeedStart::Snapshot,
                "0" | "false" => {}
                _ => return Err(format!("snapshot={v:?}: not 1 or 0")),
            },
            SNAPSHOT => {}
            _ => rest.push((k, v)),
        }
    }
    *query = rest;
    if let Some(id) = headers.get("last-event-id") {
        let id = id.to_str().unwrap_or_default().trim();
        if !id.is_empty() {
            let rev: u64 = id
                .parse()
                .map_err(|_| format!("Last-Event-ID {id:?}: not a revision"))?;
            start = FeedStart::From(rev.saturating_add(1));
        }
    }
    Ok(start)
}

/// The events of one batch of feed text.
fn events(text: &str) -> impl Iterator<Item = Event> + '_ {
    text.lines()
        .filter_map(|line| match FeedRecord::parse(line) {
            Ok(FeedRecord::Change { rev, kind, service }) => {
                let data =
                    wire::change_json(Some(rev), kind.word(), &service.name, service.pairs());
                Some(Event::default().id(rev.to_string()).data(data.to_string()))
            }
            Ok(FeedRecord::Synced(rev)) => Some(
                Event::default()
                    .id(rev.to_string())
                    .event("synced")
                    .data(json!({ "rev": rev }).to_string()),
            ),
            Err(_) => None,
        })
}

/// The `compacted` event, which ends the stream.
fn compacted(text: &str) -> Event {
    let data = match wire::parse_compacted(text) {
        Some(oldest) => json!({ "oldest": oldest }),
        None => json!({ "error": text }),
    };
    Event::default().event("compacted").data(data.to_string())
}

pub(super) async fn changes(
    Shared(state): Shared<State>,
    headers: HeaderMap,
    Query(mut query): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = hidden(&state) {
        return r;
    }
    let start = match start_of(&headers, &mut query) {
        Ok(s) => s,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, &why),
    };
    let req = FeedRequest { start, query };
    // A revision no longer kept is still a stream: one `compacted` event says which is the
    // oldest kept, as the browser's EventSource cannot read a refusal's body.
    let sub = match state.server.watch(&req) {
        Ok(sub) => Some(sub),
        Err(text) if wire::parse_compacted(&text).is_some() => {
            let once = stream::iter([Ok::<_, Infallible>(compacted(&text))]);
            return Sse::new(once).into_response();
        }
        Err(text) => return refuse(StatusCode::BAD_REQUEST, &text),
    };
    // Events are taken from the watcher only as the client reads them: a slow client leaves
    // them in the watcher's bounded queue, and one that falls behind gets `compacted`.
    let body = stream::unfold(
        (sub, VecDeque::<Event>::new()),
        |(mut sub, mut queued)| async move {
            loop {
                if let Some(ev) = queued.pop_front() {
                    return Some((Ok::<_, Infallible>(ev), (sub, queued)));
                }
                let s = sub.as_mut()?;
                match s.next_text().await {
                    Ok(text) => queued.extend(events(&text)),
                    Err(text) => {
                        sub = None;
                        return Some((Ok(compacted(&text)), (sub, queued)));
                    }
                }
            }
        },
    );
    sse(body).into_response()
}

fn sse<S>(body: S) -> impl IntoResponse
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    Sse::new(body).keep_alive(KeepAlive::new().interval(SSE_KEEPALIVE))
}

pub(super) async fn not_found() -> Response {
    refuse(StatusCode::NOT_FOUND, "not found")
}

pub(super) async fn not_allowed() -> Response {
    refuse(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed: this HTTP side is read-only (GET)",
    )
}
