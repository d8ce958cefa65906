//! `registry serve --http`: every endpoint through a real HTTP client (reqwest over hyper), the
//! event stream resumed with `Last-Event-ID`, bad requests, the metrics read by a Prometheus
//! text parser, `query --json` and `watch --json` printing the API's objects, and `--auth`
//! hiding the catalog.

mod process;

use futures_util::StreamExt as _;
use process::Running;
use registries::client::{Attributes, Registry};
use serde_json::{Value, json};
use std::time::Duration;

/// Generous bound that only keeps a broken build from hanging the test run.
const HANG: Duration = Duration::from_secs(60);

/// A `registry serve --http` on ephemeral ports: the process, its 9P address, its HTTP base URL.
async fn serve(extra: &[&str]) -> (Running, String, String) {
    let mut args = vec![
        "serve",
        "--listen",
        "tcp!127.0.0.1!0",
        "--no-shim",
        "--http",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let (srv, line) = Running::start(&args, "registry: http on ").await;
    let url = line
        .split_whitespace()
        .nth(3)
        .expect("the http line names its URL")
        .to_string();
    let said = srv.said();
    let nine = said
        .lines()
        .find_map(|l| l.strip_prefix("registry: listening on "))
        .expect("listening line")
        .to_string();
    (srv, nine, url)
}

async fn get(url: &str) -> (u16, String) {
    let r = tokio::time::timeout(HANG, reqwest::get(url))
        .await
        .expect("an answer")
        .expect("http");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

async fn get_json(url: &str) -> Value {
    let (status, body) = get(url).await;
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

/// One server-sent event: its id, its event name (empty: a change) and its data as JSON.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    id: String,
    event: String,
    data: Value,
}

/// Reads server-sent events from a response body.
struct Events {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

impl Events {
    async fn open(url: &str, last_event_id: Option<&str>) -> Events {
        let mut req = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let r = req.send().await.expect("http");
        assert_eq!(r.status().as_u16(), 200, "{url}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Events {
            body: r.bytes_stream().boxed(),
            buf: String::new(),
        }
    }

    async fn next(&mut self) -> Sse {
        tokio::time::timeout(HANG, async {
            loop {
                if let Some(end) = self.buf.find("\n\n") {
                    let block: String = self.buf.drain(..end + 2).collect();
                    let mut ev = Sse {
                        id: String::new(),
                        event: String::new(),
                        data: Value::Null,
                    };
                    let mut any = false;
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id: ") {
                            ev.id = v.to_string();
                        } else if let Some(v) = line.strip_prefix("event: ") {
                            ev.event = v.to_string();
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            ev.data = serde_json::from_str(v).expect("data is JSON");
                            any = true;
                        }
                    }
                    if any {
                        return ev;
                    }
                    continue;
                }
                let chunk = self.body.next().await.expect("stream open").expect("read");
                self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        })
        .await
        .expect("an event in time")
    }
}

/// The samples of `/metrics`, parsed by `prometheus-parse`.
async fn scrape(url: &str) -> prometheus_parse::Scrape {
    let (status, text) = get(&format!("{url}/metrics")).await;
    assert_eq!(status, 200);
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("Prometheus text")
}

fn sample(s: &prometheus_parse::Scrape, name: &str, label: (&str, &str)) -> f64 {
    s.samples
        .iter()
        .find(|x| x.metric == name && x.labels.get(label.0) == Some(label.1))
        .map(|x| match x.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn services_changes_metrics_and_bad_requests() {
    let (_srv, nine, url) = serve(&["--history", "100"]).await;
    let reg = Registry::open(&nine).await.unwrap();
    let before = scrape(&url).await;
    assert_eq!(
        sample(&before, "registry_services", ("persist", "false")),
        0.0
    );

    let a = reg
        .register(
            "tcp!alpha!1",
            &Attributes::new([("proto", "styx"), ("auth", "none")]),
            false,
        )
        .await
        .unwrap();
    let _b = reg
        .register("tcp!beta!2", &Attributes::new([("proto", "http")]), true)
        .await
        .unwrap();

    // Services, as find gives them.
    let all = get_json(&format!("{url}/v1/services")).await;
    assert_eq!(
        all,
        json!([
            {"name": "tcp!alpha!1", "attrs": [["auth", "none"], ["proto", "styx"]],
             "owner": "none", "persist": false},
            {"name": "tcp!beta!2", "attrs": [["persist", "1"], ["proto", "http"]],
             "owner": "none", "persist": true},
        ])
    );
    let styx = get_json(&format!("{url}/v1/services?proto=styx")).await;
    assert_eq!(styx.as_array().unwrap().len(), 1);
    assert_eq!(styx[0]["name"], "tcp!alpha!1");
    let any = get_json(&format!("{url}/v1/services?proto=*&persist=*")).await;
    assert_eq!(any.as_array().unwrap().len(), 1);
    assert_eq!(
        get_json(&format!("{url}/v1/services?proto=nope")).await,
        json!([])
    );
    let info = get_json(&format!("{url}/v1/info")).await;
    assert_eq!(info["services"], 2);
    assert_eq!(info["store"], "memory");

    // The metrics follow.
    let m = scrape(&url).await;
    assert_eq!(sample(&m, "registry_services", ("persist", "false")), 1.0);
    assert_eq!(sample(&m, "registry_services", ("persist", "true")), 1.0);
    assert!(sample(&m, "registry_styx_requests_total", ("type", "Twrite")) >= 2.0);
    assert!(sample(&m, "registry_connections_open", ("listener", "9p")) >= 1.0);
    assert!(sample(&m, "registry_connections_open", ("listener", "http")) >= 1.0);

    // The feed: a snapshot, then a live change.
    let mut snap = Events::open(&format!("{url}/v1/changes?snapshot=1&proto=styx"), None).await;
    let first = snap.next().await;
    assert_eq!(first.event, "");
    assert_eq!(first.data["change"], "added");
    assert_eq!(first.data["name"], "tcp!alpha!1");
    let synced = snap.next().await;
    assert_eq!(synced.event, "synced");

    let _c = reg
        .register("tcp!gamma!3", &Attributes::new([("proto", "styx")]), false)
        .await
        .unwrap();
    let added = snap.next().await;
    assert_eq!(added.data["name"], "tcp!gamma!3");
    assert_eq!(added.id, added.data["rev"].to_string());
    drop(snap);

    // Resumed with Last-Event-ID: what came after that revision, nothing before.
    drop(a);
    let resumed_url = format!("{url}/v1/changes?proto=styx");
    let mut resumed = Events::open(&resumed_url, Some(&added.id)).await;
    let removed = resumed.next().await;
    assert_eq!(removed.data["change"], "removed");
    assert_eq!(removed.data["name"], "tcp!alpha!1");
    assert!(removed.data["rev"].as_u64() > added.data["rev"].as_u64());
    // from=REV gives the same.
    let rev = added.data["rev"].as_u64().unwrap() + 1;
    let mut from = Events::open(&format!("{resumed_url}&from={rev}"), None).await;
    assert_eq!(from.next().await, removed);

    // A revision no longer kept: one `compacted` event.
    let mut old = Events::open(&format!("{url}/v1/changes?from=1"), None).await;
    let c = old.next().await;
    assert_eq!(c.event, "compacted");
    assert!(c.data["oldest"].as_u64().unwrap() > 1, "{c:?}");

    // Bad requests: 4xx with a short body.
    for (path, status) in [
        ("/v1/changes?from=x", 400),
        ("/v1/changes?snapshot=maybe", 400),
        ("/nowhere", 404),
        ("/v1/services/extra", 404),
    ] {
        let (got, body) = get(&format!("{url}{path}")).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(!body.is_empty() && body.len() < 200, "{path}: {body:?}");
    }
    let r = reqwest::Client::new()
        .get(format!("{url}/v1/changes"))
        .header("Last-Event-ID", "soon")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/services"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);

    // The page is served by the binary, with nothing from outside.
    let (status, page) = get(&format!("{url}/")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<html") || page.contains("<!doctype"),
        "{page}"
    );
    for outside in [
        "src=\"http",
        "href=\"http",
        "url(http",
        "@import",
        "src='http",
    ] {
        assert!(
            !page.contains(outside),
            "the page fetches from elsewhere: {outside}"
        );
    }

    let m = scrape(&url).await;
    assert_eq!(sample(&m, "registry_services", ("persist", "false")), 1.0);

    // Clients that went leave no watcher behind.
    drop((resumed, from, old));
    let gone = tokio::time::timeout(HANG, async {
        loop {
            let m = scrape(&url).await;
            let w = m
                .samples
                .iter()
                .find(|x| x.metric == "registry_feed_watchers");
            if let Some(prometheus_parse::Value::Gauge(0.0)) = w.map(|x| &x.value) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    gone.await
        .expect("the watchers of closed event streams end");
}

#[tokio::test]
async fn query_and_watch_json_print_the_api_objects() {
    use tokio::io::AsyncBufReadExt as _;
    let (_srv, nine, url) = serve(&[]).await;
    let reg = Registry::open(&nine).await.unwrap();
    let _a = reg
        .register(
            "tcp!alpha!1",
            &Attributes::new([("proto", "styx"), ("text", "a b")]),
            true,
        )
        .await
        .unwrap();

    let out = process::registry(&["query", "--json", "--all", "-m", &nine])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let served = get_json(&format!("{url}/v1/services")).await;
    assert_eq!(printed, served);

    // `watch --json` prints, a line each, the objects the event stream carries.
    let rev = get_json(&format!("{url}/v1/info")).await["revision"].to_string();
    let mut events = Events::open(&format!("{url}/v1/changes?from={rev}"), None).await;
    let streamed = events.next().await;
    assert_eq!(streamed.data["change"], "added", "{streamed:?}");
    let mut watch = process::registry(&["watch", "--json", "--from", &rev, "-m", &nine]);
    let mut child = watch.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(HANG, lines.next_line())
        .await
        .expect("watch printed")
        .unwrap()
        .expect("a line");
    let watched: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(watched, streamed.data);
}

#[tokio::test]
async fn with_auth_the_catalog_is_hidden_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let signer = dir.path().join("signer");
    let server = dir.path().join("server");
    let (s, k) = (signer.to_str().unwrap(), server.to_str().unwrap());
    for args in [
        vec!["key", "signer", "-b", "512", "-f", s, "testsigner"],
        vec!["key", "issue", "-k", s, "server", k],
    ] {
        let out = process::registry(&args).output().await.unwrap();
        assert!(out.status.success());
    }
    let (_srv, _, url) = serve(&["--auth", k]).await;
    for path in ["/", "/v1/services", "/v1/changes", "/v1/info"] {
        let (status, body) = get(&format!("{url}{path}")).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    assert_eq!(get(&format!("{url}/metrics")).await.0, 200);

    let (_srv, _, url) = serve(&["--auth", k, "--http-public"]).await;
    assert_eq!(get_json(&format!("{url}/v1/services")).await, json!([]));
}

/// Limits that bite are counted by name: a silent socket closed at the handshake deadline, and
/// silent sockets at the connection cap closed to make room.
#[tokio::test]
async fn limits_that_bite_are_counted() {
    let (_srv, nine, url) = serve(&["--handshake-timeout", "0.3", "--max-connections", "2"]).await;
    let sock = nine.strip_prefix("tcp!").unwrap().replacen('!', ":", 1);
    let _a = tokio::net::TcpStream::connect(&sock).await.unwrap();
    let _b = tokio::net::TcpStream::connect(&sock).await.unwrap();
    // At the cap of 2: this one takes the place of the oldest silent socket.
    let _c = tokio::net::TcpStream::connect(&sock).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let s = scrape(&url).await;
    let hits = |limit| sample(&s, "registry_limit_hits_total", ("limit", limit));
    assert!(hits("9p_evicted") >= 1.0, "no eviction counted");
    assert!(
        hits("9p_handshake_deadline") >= 1.0,
        "no handshake deadline counted"
    );
}

/// The event streams of one connection share one `event` read, seen in the server's count of
/// waiting reads: a hundred streams of one `Registry` and its clones hold one, all of them hear
/// a change, and when the last is dropped the read goes.
#[tokio::test]
async fn a_connections_event_streams_share_one_read() {
    let (_srv, nine, url) = serve(&[]).await;
    let dial = |user: &'static str| {
        let nine = nine.clone();
        async move {
            let svc = registries::client::Service::new(&nine, Attributes::new([("auth", "none")]));
            let a = svc.attach(None, None).await.unwrap();
            Registry::connect_stream(a.fd, Some(user)).await.unwrap()
        }
    };
    let reg = dial("alice").await;
    let mut streams = Vec::new();
    for i in 0..100 {
        let clone = reg.clone();
        let r = if i % 2 == 0 { &reg } else { &clone };
        streams.push(r.events().await.unwrap());
    }
    let waiting = |n: f64| {
        let url = url.clone();
        async move {
            tokio::time::timeout(HANG, async {
                loop {
                    let s = scrape(&url).await;
                    if sample(&s, "registry_waiting_reads", ("kind", "event")) == n {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("never {n} waiting event reads"));
        }
    };
    waiting(1.0).await;
    let other = dial("bob").await;
    let _held = other
        .register("svc", &Attributes::default(), false)
        .await
        .unwrap();
    for s in &mut streams {
        let n = tokio::time::timeout(HANG, s.next()).await.unwrap();
        assert!(n.unwrap().unwrap() > 0);
    }
    // A second connection's stream is a read of its own.
    let mut theirs = other.events().await.unwrap();
    waiting(2.0).await;
    drop(streams);
    waiting(1.0).await;
    // A stream made after the shared read went opens `event` anew.
    let mut again = reg.events().await.unwrap();
    waiting(2.0).await;
    drop(_held);
    for s in [&mut again, &mut theirs] {
        let n = tokio::time::timeout(HANG, s.next()).await.unwrap();
        assert!(n.unwrap().is_ok());
    }
}
