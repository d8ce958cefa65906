//! What a newcomer meets first: a manual page for every subcommand, output that may be cut
//! short (`| head`), examples that paste into bash, `serve --help` in groups, `mount -d` saying
//! what it left running, and a demo whose services stand clear of the demo itself. Each command
//! runs in its own process.

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;

use common::within;
use process::{Running, registry};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

async fn run(args: &[&str]) -> Output {
    within(registry(args).output()).await.unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `registry ARGS --help`, which must succeed.
async fn help(args: &[&str]) -> String {
    let mut with = args.to_vec();
    with.push("--help");
    let out = run(&with).await;
    assert!(out.status.success(), "{with:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// The names in the `Commands:` section of a help text, but `help`.
fn commands_in(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every subcommand, and every subcommand of one, as the words that name it (`["key",
/// "issue"]`), found from the help texts.
async fn every_subcommand() -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut todo: Vec<Vec<String>> = vec![vec![]];
    while let Some(path) = todo.pop() {
        let words: Vec<&str> = path.iter().map(String::as_str).collect();
        for name in commands_in(&help(&words).await) {
            let mut sub = path.clone();
            sub.push(name);
            found.push(sub.clone());
            todo.push(sub);
        }
    }
    assert!(found.len() >= 12, "too few subcommands found: {found:?}");
    found
}

/// The manual page name of a subcommand: `registry-key-issue`.
fn page_name(path: &[String]) -> String {
    std::iter::once("registry")
        .chain(path.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("-")
}

#[tokio::test]
async fn every_subcommand_has_a_manual_page_that_names_it() {
    let subcommands = every_subcommand().await;
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let out = run(&["man", "--dir", pages.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());

    let top = run(&["man"]).await;
    assert!(top.status.success());
    let top = text(&top.stdout);
    assert!(top.contains(".TH registry 1"), "{top}");
    assert_eq!(
        std::fs::read_to_string(pages.join("registry.1")).unwrap(),
        top
    );
    let mut names = vec!["registry".to_string()];
    for path in &subcommands {
        let name = page_name(path);
        let words: Vec<&str> = std::iter::once("man")
            .chain(path.iter().map(String::as_str))
            .collect();
        let out = run(&words).await;
        assert!(out.status.success(), "{words:?}: {}", text(&out.stderr));
        let page = text(&out.stdout);
        assert!(page.contains(&format!(".TH {name} 1")), "{words:?}: {page}");
        // The NAME section: `registry\-key\-issue \- what it does` (roff escapes `-`).
        let escaped = name.replace('-', "\\-");
        assert!(
            page.contains(&format!(".SH NAME\n{escaped} \\- ")),
            "{words:?} does not name {name}: {page}"
        );
        assert!(
            page.contains(&format!("registry {}", path.join(" "))),
            "{words:?}: no synopsis of it"
        );
        let file = pages.join(format!("{name}.1"));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())),
            page,
            "{words:?}"
        );
        names.push(name);
    }
    // Nothing else was written, and every page the pages refer to is there.
    let mut written: Vec<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    let mut wanted: Vec<String> = names.iter().map(|n| format!("{n}.1")).collect();
    wanted.sort();
    assert_eq!(written, wanted);
    for file in &written {
        let page = std::fs::read_to_string(pages.join(file)).unwrap();
        for (at, _) in page.match_indices("(1)") {
            let start = page[..at]
                .rfind(|c: char| c.is_whitespace())
                .map_or(0, |i| i + 1);
            let referred = page[start..at].replace("\\-", "-");
            if referred.starts_with("registry") {
                assert!(
                    names.contains(&referred),
                    "{file} refers to {referred}(1), which is not written"
                );
            }
        }
    }

    let out = run(&["man", "bogus"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("serve"), "{}", text(&out.stderr));
}

/// A pipe whose reading end is already closed, as a child's standard output.
fn closed_stdout() -> Stdio {
    // std's pipes are close-on-exec, so no other child holds the reading end.
    let (read, write) = std::io::pipe().unwrap();
    drop(read);
    Stdio::from(write)
}

/// Runs `registry ARGS` with standard output a pipe whose reading end is already closed.
async fn with_stdout_closed(args: &[&str]) -> Output {
    let mut cmd = registry(args);
    // Not `output()`, which would make standard output a pipe of its own.
    cmd.stdout(closed_stdout()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    drop(cmd);
    within(child.wait_with_output()).await.unwrap()
}

#[tokio::test]
async fn a_closed_standard_output_ends_any_command_quietly() {
    let (_demo, addr) = demo().await;
    for args in [
        &["man"][..],
        &["man", "serve"],
        &["completions", "bash"],
        &["completions", "zsh"],
        &["query", "-m", &addr, "--all"],
        &["query", "-m", &addr, "--all", "--json"],
        &["watch", "-m", &addr],
    ] {
        let out = with_stdout_closed(args).await;
        let err = text(&out.stderr);
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        // `watch` says where it starts before its first line, as it always does.
        let said: Vec<&str> = err
            .lines()
            .filter(|l| !l.starts_with("registry: watching from revision "))
            .collect();
        assert!(said.is_empty(), "{args:?} said: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

/// The words of a shell command line that hold a `!` outside single quotes: bash's history
/// expansion takes those (`!127` in `tcp!127.0.0.1!6675`), also inside double quotes.
fn unquoted_bangs(line: &str) -> Vec<String> {
    let (mut bad, mut word, mut bang) = (Vec::new(), String::new(), false);
    let (mut single, mut double) = (false, false);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '\\' if !single => {
                word.push(c);
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                continue;
            }
            '#' if !single && !double && word.is_empty() => break,
            c if c.is_whitespace() && !single && !double => {
                if bang {
                    bad.push(std::mem::take(&mut word));
                }
                word.clear();
                bang = false;
                continue;
            }
            '!' if !single => bang = true,
            _ => {}
        }
        word.push(c);
    }
    if bang {
        bad.push(word);
    }
    bad
}

#[test]
fn the_quoting_check_knows_quoting() {
    assert!(unquoted_bangs("registry query -m 'tcp!h!1' proto styx # tcp!x!1").is_empty());
    assert!(unquoted_bangs("echo 'tcp!a!1 proto styx' >&3").is_empty());
    assert!(unquoted_bangs(r"registry query -m tcp\!h\!1").is_empty());
    assert_eq!(unquoted_bangs("registry -m tcp!h!1 x"), ["tcp!h!1"]);
    assert_eq!(unquoted_bangs(r#"registry -m "tcp!h!1""#), [r#""tcp!h!1""#]);
    assert_eq!(
        unquoted_bangs("serve -l 'tcp!*!1' -l unix!/tmp/s"),
        ["unix!/tmp/s"]
    );
}

/// The command lines of a help text's `Examples:` section: lines indented by two spaces (more
/// is a description), joined where one ends in `\`.
fn example_commands(help: &str) -> Vec<String> {
    let mut commands: Vec<String> = Vec::new();
    let mut continued = false;
    let mut in_examples = false;
    for line in help.lines() {
        if line == "Examples:" {
            in_examples = true;
            continue;
        }
        if !in_examples {
            continue;
        }
        if line.trim().is_empty() || !line.starts_with(' ') {
            break;
        }
        if continued {
            commands.last_mut().unwrap().push_str(line);
        } else if line.starts_with("  ") && !line.starts_with("   ") {
            commands.push(line.to_string());
        }
        continued = line.ends_with('\\');
    }
    commands
}

/// The lines of README.md's shell blocks.
fn readme_shell_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let mut lines = Vec::new();
    let mut in_sh = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = matches!(
                line.trim_start_matches('`'),
                "sh" | "bash" | "shell" | "console"
            );
            continue;
        }
        if in_sh {
            lines.push(line.to_string());
        }
    }
    assert!(lines.len() > 20, "README.md has too few shell lines");
    lines
}

#[tokio::test]
async fn every_dial_string_in_an_example_is_quoted() {
    let mut bad = Vec::new();
    for line in readme_shell_lines() {
        for word in unquoted_bangs(&line) {
            bad.push(format!("README.md: {word} in: {line}"));
        }
    }
    let mut examples = 0;
    let mut paths = every_subcommand().await;
    paths.push(vec![]);
    for path in paths {
        let words: Vec<&str> = path.iter().map(String::as_str).collect();
        for line in example_commands(&help(&words).await) {
            examples += 1;
            for word in unquoted_bangs(&line) {
                bad.push(format!(
                    "registry {} --help: {word} in: {line}",
                    path.join(" ")
                ));
            }
        }
    }
    assert!(examples > 30, "only {examples} example lines found");
    assert!(
        bad.is_empty(),
        "dial strings bash would expand:\n{}",
        bad.join("\n")
    );
}

#[tokio::test]
async fn serve_help_groups_its_options() {
    let serve = help(&["serve"]).await;
    let headings = [
        ("Listening:", "--listen"),
        ("Authentication:", "--auth"),
        ("9P limits:", "--max-fids"),
        ("Change feed:", "--feed-queue"),
        ("etcd:", "--etcd-prefix"),
        ("HTTP:", "--http-public"),
        ("TCP shim:", "--shim-reply-budget"),
    ];
    let lines: Vec<&str> = serve.lines().collect();
    for (heading, flag) in headings {
        let at = lines
            .iter()
            .position(|l| *l == heading)
            .unwrap_or_else(|| panic!("no heading {heading:?} in:\n{serve}"));
        let section: Vec<&str> = lines[at + 1..]
            .iter()
            .take_while(|l| !l.is_empty())
            .copied()
            .collect();
        assert!(
            section.iter().any(|l| l.contains(flag)),
            "{flag} is not under {heading:?}:\n{serve}"
        );
    }
    assert!(
        help(&["shim"]).await.lines().any(|l| l == "Limits:"),
        "shim --help has no Limits heading"
    );
}

/// `registry serve --demo` on free ports: it, once its banner is out, and its 9P address.
async fn demo() -> (Running, String) {
    // No `registry` on PATH, so that the banner says where this one is.
    let (demo, _) = Running::start_with(
        None,
        &[("PATH", "/usr/bin:/bin")],
        &[
            "serve",
            "--demo",
            "--listen",
            "tcp!127.0.0.1!0",
            "--no-shim",
            "--http",
            "127.0.0.1:0",
        ],
        "Stop with ^C",
    )
    .await;
    let said = demo.said();
    let line = said
        .lines()
        .find(|l| l.starts_with("registry: listening on "))
        .expect("a listening line");
    let addr = format!("tcp!127.0.0.1!{}", Running::port_of(line));
    (demo, addr)
}

#[tokio::test]
async fn the_demo_services_stand_clear_of_the_demo_and_the_banner_says_what_registry_is() {
    let (demo, addr) = demo().await;
    let banner = demo.said();
    assert!(!banner.contains("cargo run"), "{banner}");
    assert!(
        banner.contains(&format!(
            "(`registry` is {} here; `cargo install --path cli` puts it on your PATH.)",
            env!("CARGO_BIN_EXE_registry")
        )),
        "{banner}"
    );
    let out = run(&["query", "-m", &addr, "--all", "-n"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let names = text(&out.stdout);
    assert_eq!(names.lines().count(), 4, "{names}");
    // The default ports of the demo: 9P, HTTP (--demo's), the shim.
    let own = [6675, 6680, 6701, 6702, 6703];
    for name in names.lines() {
        let port: u16 = name.rsplit('!').next().unwrap().parse().unwrap();
        assert!(
            !own.contains(&port),
            "{name} is at one of the demo's own ports"
        );
    }
}

/// Whether FUSE can be used here (as in mount_fuse.rs): without it the test skips, but in CI.
fn fuse_available(test: &str) -> bool {
    let ok = Path::new("/dev/fuse").exists()
        && std::process::Command::new("fusermount3")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("REGISTRY_REQUIRE_PEERS").is_none(),
            "{test}: /dev/fuse or fusermount3 missing (Debian: apt-get install fuse3)"
        );
        eprintln!("{test}: /dev/fuse or fusermount3 missing; skipped");
    }
    ok
}

/// Whether a FUSE file system is mounted at `dir`.
fn mounted(dir: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = dir.to_string_lossy().replace(' ', "\\040");
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()) && l.contains(" - fuse"))
}

/// `registry mount -d -m ADDR DIR` with standard output `stdout`, once it has returned: its
/// exit status, the line it said on standard error about the process it left running, and that
/// process's id taken from the line.
async fn mount_d(addr: &str, dir: &Path, stdout: Stdio) -> (std::process::ExitStatus, String, i32) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut parent = registry(&["mount", "-d", "-m", addr, dir.to_str().unwrap()])
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The background process keeps standard error: read it only up to the parent's line.
    let mut err = BufReader::new(parent.stderr.take().unwrap()).lines();
    let told = within(async {
        loop {
            let line = err
                .next_line()
                .await
                .unwrap()
                .expect("mount -d said nothing");
            if line.contains("running in the background") {
                return line;
            }
        }
    })
    .await;
    let status = within(parent.wait()).await.unwrap();
    // Anything more the parent said (a panic) came before it exited.
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(Duration::from_millis(300), err.next_line()).await
    {
        assert!(!line.contains("panicked"), "mount -d: {line}");
    }
    let pid = told
        .split("as process ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no process id in {told:?}"));
    assert_eq!(
        told,
        format!(
            "registry mount: running in the background as process {pid}; stop it with \
             `fusermount3 -u {}` or `kill {pid}`",
            dir.display()
        )
    );
    (status, told, pid)
}

/// Stops the mount process `pid` with SIGTERM and waits until `dir` is unmounted.
async fn stop_mount(pid: i32, dir: &Path) {
    // SAFETY: kill(2) with the process id the command gave.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let start = Instant::now();
    while mounted(dir) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "still mounted after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn mount_d_says_which_process_it_left_running() {
    use tokio::io::AsyncReadExt;
    if !fuse_available("mount_d_says_which_process_it_left_running") {
        return;
    }
    let (_srv, line) = Running::start(
        &["serve", "--listen", "tcp!127.0.0.1!0", "--no-shim"],
        "listening on",
    )
    .await;
    let addr = format!("tcp!127.0.0.1!{}", Running::port_of(&line));
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("reg");
    std::fs::create_dir(&dir).unwrap();

    // Standard output a pipe (no terminal): the process id alone there too, for scripts.
    let (read, write) = std::io::pipe().unwrap();
    let (status, _, pid) = mount_d(&addr, &dir, Stdio::from(write)).await;
    assert!(status.success());
    let mut printed = String::new();
    tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(read))
        .unwrap()
        .read_to_string(&mut printed)
        .await
        .unwrap();
    assert_eq!(printed, format!("{pid}\n"));
    assert!(mounted(&dir));
    stop_mount(pid, &dir).await;

    // Standard output closed: said on standard error all the same, and no failure for it.
    let (status, _, pid) = mount_d(&addr, &dir, closed_stdout()).await;
    assert_eq!(status.code(), Some(0));
    assert!(mounted(&dir));
    stop_mount(pid, &dir).await;
}
