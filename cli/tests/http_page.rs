//! The live page of `registry serve --http` in a real browser: Debian's headless `chromium`,
//! driven over WebDriver by `chromedriver`. A service registered appears as a row without a
//! reload, and goes when it is unregistered. The test leaves a screenshot of the page in
//! `target/http-page.png` for a person to look at.
//!
//! Without chromium and chromedriver the test says so and passes, except with
//! `REGISTRY_REQUIRE_PEERS` set (CI), where it fails.

mod process;

use process::Running;
use registries::client::{Attributes, Registry};
use serde_json::{Value, json};
use std::time::Duration;

const HANG: Duration = Duration::from_secs(60);
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A WebDriver session on a headless chromium.
struct Browser {
    driver: tokio::process::Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Browser {
    async fn start() -> Option<Browser> {
        let present = |p: &str| std::path::Path::new(p).exists();
        if !present(CHROMIUM) || !present(CHROMEDRIVER) {
            let why = "chromium and chromedriver are not installed \
                       (Debian: apt-get install chromium chromium-driver)";
            assert!(
                std::env::var_os("REGISTRY_REQUIRE_PEERS").is_none(),
                "{why}"
            );
            eprintln!("skipped: {why}");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let ready = tokio::time::timeout(HANG, async {
            loop {
                if let Ok(r) = http.get(format!("{base}/status")).send().await
                    && let Ok(v) = r.json::<Value>().await
                    && v["value"]["ready"] == true
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        ready.await.expect("chromedriver ready");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,800"]
            }
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        Some(Browser {
            driver,
            base,
            session,
            http,
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if !body.is_null() {
            req = req.json(&body);
        }
        let r: Value = req.send().await.unwrap().json().await.unwrap();
        r["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await;
    }

    async fn eval(&self, script: &str) -> Value {
        let body = json!({ "script": script, "args": [] });
        self.call(reqwest::Method::POST, "/execute/sync", body)
            .await
    }

    /// Waits until `script` returns `want`.
    async fn wait_for(&self, script: &str, want: Value) {
        let seen = tokio::time::timeout(HANG, async {
            loop {
                if self.eval(script).await == want {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        if seen.is_err() {
            panic!(
                "{script} never gave {want}, last {}",
                self.eval(script).await
            );
        }
    }

    async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine as _;
        let v = self
            .call(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        if let Some(b64) = v.as_str()
            && let Ok(png) = base64::engine::general_purpose::STANDARD.decode(b64)
        {
            let _ = std::fs::write(path, png);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.start_kill();
    }
}

const ROWS: &str =
    "return [...document.querySelectorAll('#services tr[data-name]')].map(r => r.dataset.name)";
const STATUS: &str = "const e = document.getElementById('status-text') \
                      || document.getElementById('status'); return e && e.textContent.trim()";

#[tokio::test]
async fn rows_appear_and_go_without_a_reload() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (srv, line) = Running::start(
        &[
            "serve",
            "--listen",
            "tcp!127.0.0.1!0",
            "--no-shim",
            "--http",
            "127.0.0.1:0",
        ],
        "registry: http on ",
    )
    .await;
    let url = line.split_whitespace().nth(3).unwrap().to_string();
    let nine = srv
        .said()
        .lines()
        .find_map(|l| l.strip_prefix("registry: listening on "))
        .unwrap()
        .to_string();
    let reg = Registry::open(&nine).await.unwrap();
    let _first = reg
        .register("tcp!alpha!1", &Attributes::new([("proto", "styx")]), false)
        .await
        .unwrap();

    browser.open(&format!("{url}/")).await;
    browser.wait_for(STATUS, json!("live")).await;
    browser.wait_for(ROWS, json!(["tcp!alpha!1"])).await;
    // Mark the document: a reload would lose the mark.
    browser.eval("window.__noReload = true; return true").await;

    let second = reg
        .register(
            "tcp!beta!2",
            &Attributes::new([("proto", "http"), ("text", "<b>not html</b>")]),
            false,
        )
        .await
        .unwrap();
    browser
        .wait_for(ROWS, json!(["tcp!alpha!1", "tcp!beta!2"]))
        .await;
    let count = browser
        .eval("return document.getElementById('count').textContent.trim()")
        .await;
    assert!(count.as_str().unwrap_or("").starts_with('2'), "{count}");
    // Attribute text is text, never markup.
    let bold = browser
        .eval("return document.querySelectorAll('#services b').length")
        .await;
    assert_eq!(bold, json!(0));
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/http-page.png");
    browser.screenshot(&target).await;

    drop(second);
    browser.wait_for(ROWS, json!(["tcp!alpha!1"])).await;
    assert_eq!(
        browser.eval("return window.__noReload === true").await,
        json!(true)
    );
    browser.call(reqwest::Method::DELETE, "", Value::Null).await;
}
