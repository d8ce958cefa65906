//! `cargo bench --bench text`: the registry's text parsers and formatters, per call, so that a
//! change of how one is written (hand-written or a parser-combinator grammar) is measured:
//!
//! * `%q` unquoting of a service line, hand-written and as a nom 8 grammar side by side (why the
//!   registry does not use nom: spec/packages.md §2), and quoting one (`index` and `find` rendering);
//! * a 10,000-service `index` text parsed back into services (what a client does with it);
//! * a query line parsed into pairs (each 9P write of `find`);
//! * a change-feed record, an attrdb(6) file, an Inferno dial string.

use registries::net::Addr;
use registries::registry::attrdb;
use registries::wire::{self, FeedRecord};
use std::hint::black_box;
use std::time::{Duration, Instant};

const RUN: Duration = Duration::from_millis(1500);

/// Calls `f` for about [`RUN`] and prints the time of one call.
fn per_call(label: &str, mut f: impl FnMut()) {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < RUN {
        for _ in 0..64 {
            f();
        }
        n += 64;
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    println!("{label:<44} {ns:>12.0} ns");
}

fn main() {
    let line = "tcp!myhost.example.com!7001 proto styx auth infpk1 \
                description 'the host''s files' persist 1 \"auth.signer\" mysigner";
    per_call("unquote a service line", || {
        black_box(wire::unquote(black_box(line)));
    });
    for l in [
        line,
        "a b\tc\nd",
        "''",
        "a'b c'",
        "'open",
        "   ",
        "'it''s' x''y",
    ] {
        assert_eq!(nom_unquote::unquote(l), wire::unquote(l), "{l:?}");
    }
    per_call("unquote a service line (nom 8 grammar)", || {
        black_box(nom_unquote::unquote(black_box(line)));
    });
    let pairs = [
        ("proto", "styx"),
        ("auth", "infpk1"),
        ("description", "the host's files"),
        ("persist", "1"),
    ];
    per_call("format a service line (push_line)", || {
        let mut out = String::with_capacity(128);
        wire::push_line(&mut out, black_box("tcp!myhost!7001"), pairs);
        black_box(out);
    });
    let mut index = String::new();
    for i in 0..10_000 {
        wire::push_line(&mut index, &format!("tcp!host{i}!{}", 7000 + i), pairs);
        index.push('\n');
    }
    per_call("parse a 10,000-service index", || {
        black_box(wire::parse_services(black_box(&index)));
    });
    per_call("parse a find query (3 pairs)", || {
        black_box(wire::parse_pairs(black_box("proto styx auth * persist 1")).ok());
    });
    let record = "1796328482959907 changed tcp!myhost!7001 proto styx text 'a b'";
    per_call("parse a feed record", || {
        black_box(FeedRecord::parse(black_box(record)).ok());
    });
    let db = "service=net!click!1234\n\tdescription='snapshot service' auth=none\n\
              service=tcp!h!1 proto=styx\n\n# comment\nservice=tcp!h!2\n\tpersist=1\n"
        .repeat(20);
    per_call("parse an attrdb file (60 entries)", || {
        black_box(attrdb::parse_lenient(black_box(&db)));
    });
    per_call("parse a dial string", || {
        black_box(Addr::parse(black_box("tcp!myhost.example.com!6675"), "registry").ok());
    });
}

/// The same splitting as a nom 8 grammar, timed beside the hand-written one (spec/packages.md).
mod nom_unquote {
    use nom::branch::alt;
    use nom::bytes::complete::{is_not, tag, take_while};
    use nom::character::complete::char;
    use nom::combinator::{opt, value};
    use nom::multi::{fold_many0, fold_many1, many0};
    use nom::sequence::{delimited, preceded, terminated};
    use nom::{IResult, Parser};
    use std::borrow::Cow;

    fn blanks(i: &str) -> IResult<&str, &str> {
        take_while(|c| matches!(c, ' ' | '\t' | '\n'))(i)
    }

    /// `'...'` with `''` for a quote; an unclosed quote ends at the end of the line.
    fn quoted(i: &str) -> IResult<&str, Cow<'_, str>> {
        let body = fold_many0(
            alt((value("'", tag("''")), is_not("'"))),
            String::new,
            |mut s, piece| {
                s.push_str(piece);
                s
            },
        );
        delimited(char('\''), body, opt(char('\'')))
            .map(Cow::Owned)
            .parse(i)
    }

    fn word(i: &str) -> IResult<&str, String> {
        fold_many1(
            alt((quoted, is_not(" \t\n'").map(Cow::Borrowed))),
            String::new,
            |mut w, piece| {
                w.push_str(&piece);
                w
            },
        )
        .parse(i)
    }

    pub fn unquote(line: &str) -> Vec<String> {
        let words = terminated(many0(preceded(blanks, word)), blanks).parse(line);
        words.map(|(_, w)| w).unwrap_or_default()
    }
}
