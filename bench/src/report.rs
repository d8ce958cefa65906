//! The bench's output: a detail line per measurement as it is made, then one line per scenario,
//! `scenario ours etcd zookeeper ratio ratio`, where a ratio above 1 means we are better, and the
//! same as JSON (`--json FILE`).

use super::stats::{Summary, fmt_dur, fmt_num};

/// Which system a figure belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Our registry (or the one at `-m`).
    Ours,
    /// etcd.
    Etcd,
    /// ZooKeeper.
    Zookeeper,
}

impl Side {
    /// The side of a system's label.
    pub fn of(label: &str) -> Side {
        match label {
            "etcd" => Side::Etcd,
            "zookeeper" => Side::Zookeeper,
            _ => Side::Ours,
        }
    }
}

/// Which way is better for a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Throughput: ratio = ours / etcd.
    Higher,
    /// Latency, memory: ratio = etcd / ours.
    Lower,
}

/// One summary line.
#[derive(Debug, Clone)]
pub struct Line {
    /// Scenario name, with its size and unit.
    pub name: String,
    /// Which way is better.
    pub better: Better,
    /// Our figure.
    pub ours: Option<f64>,
    /// etcd's figure.
    pub etcd: Option<f64>,
    /// ZooKeeper's figure.
    pub zookeeper: Option<f64>,
}

impl Line {
    /// ours/etcd for throughput, etcd/ours for costs; `None` without both figures.
    pub fn ratio(&self) -> Option<f64> {
        self.ratio_to(self.etcd)
    }

    /// The same against ZooKeeper.
    pub fn ratio_zookeeper(&self) -> Option<f64> {
        self.ratio_to(self.zookeeper)
    }

    fn ratio_to(&self, peer: Option<f64>) -> Option<f64> {
        let (o, e) = (self.ours?, peer?);
        // A memory delta can read zero or less (a heap that had room already): no ratio then.
        if o <= 0.0 || e <= 0.0 {
            return None;
        }
        let r = match self.better {
            Better::Higher => o / e,
            Better::Lower => e / o,
        };
        r.is_finite().then_some(r)
    }
}

/// Everything measured in a run.
#[derive(Debug, Default)]
pub struct Report {
    /// Summary lines, in the order first seen.
    pub lines: Vec<Line>,
}

impl Report {
    /// Records `value` for `side` under `name`.
    pub fn set(&mut self, name: &str, better: Better, side: Side, value: f64) {
        let idx = match self.lines.iter().position(|l| l.name == name) {
            Some(i) => i,
            None => {
                self.lines.push(Line {
                    name: name.to_string(),
                    better,
                    ours: None,
                    etcd: None,
                    zookeeper: None,
                });
                self.lines.len() - 1
            }
        };
        if let Some(line) = self.lines.get_mut(idx) {
            match side {
                Side::Ours => line.ours = Some(value),
                Side::Etcd => line.etcd = Some(value),
                Side::Zookeeper => line.zookeeper = Some(value),
            }
        }
    }

    /// Prints the closing table: each figure, and our ratio to each peer (above 1: ours is
    /// better).
    pub fn print_summary(&self) {
        println!();
        println!(
            "{:<32} {:>12} {:>12} {:>12} {:>8} {:>8}",
            "scenario", "ours", "etcd", "zookeeper", "vs etcd", "vs zk"
        );
        for l in &self.lines {
            let show = |v: Option<f64>| v.map_or_else(|| "-".to_string(), fmt_num);
            let ratio = |r: Option<f64>| r.map_or_else(|| "-".to_string(), |r| format!("{r:.2}"));
            println!(
                "{:<32} {:>12} {:>12} {:>12} {:>8} {:>8}",
                l.name,
                show(l.ours),
                show(l.etcd),
                show(l.zookeeper),
                ratio(l.ratio()),
                ratio(l.ratio_zookeeper())
            );
        }
    }

    /// The summary as JSON: one object per scenario, `{"scenario", "unit", "higher_is_better",
    /// "ours", "etcd", "zookeeper"}` (a missing figure is null; the unit is the scenario name's
    /// last part, as `us` in `register-1-p50-us`).
    pub fn to_json(&self) -> serde_json::Value {
        let lines = self.lines.iter().map(|l| {
            serde_json::json!({
                "scenario": l.name,
                "unit": unit_of(&l.name),
                "higher_is_better": l.better == Better::Higher,
                "ours": l.ours,
                "etcd": l.etcd,
                "zookeeper": l.zookeeper,
            })
        });
        serde_json::Value::Array(lines.collect())
    }
}

/// The unit a scenario name ends in: `us`, `/s`, `B`, ... (the part after the last `-`).
fn unit_of(name: &str) -> &str {
    name.rsplit('-').next().unwrap_or("")
}

/// Prints one measurement as it is made.
pub fn detail(label: &str, what: &str, s: &Summary, extra: &str) {
    println!(
        "{label:<5} {what:<26} {:>8} ops {:>10}/s  p50 {:>8}  p99 {:>8}  {extra}",
        s.ops,
        fmt_num(s.per_sec),
        fmt_dur(s.p50),
        fmt_dur(s.p99),
    );
}

/// Prints a memory figure as it is measured.
pub fn memory(label: &str, what: &str, bytes: Option<f64>, extra: &str) {
    let shown = bytes.map_or_else(
        || "n/a (no process to read)".to_string(),
        |b| format!("{b:.0} B"),
    );
    println!("{label:<5} {what:<26} {shown:>12}  {extra}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_favour_us_above_one() {
        let mut r = Report::default();
        r.set("tput", Better::Higher, Side::Ours, 200.0);
        r.set("tput", Better::Higher, Side::Etcd, 100.0);
        r.set("lat", Better::Lower, Side::Ours, 1.0);
        r.set("lat", Better::Lower, Side::Etcd, 4.0);
        r.set("alone", Better::Lower, Side::Ours, 1.0);
        let ratios: Vec<_> = r.lines.iter().map(Line::ratio).collect();
        assert_eq!(ratios, vec![Some(2.0), Some(4.0), None]);
        r.set("tput", Better::Higher, Side::Zookeeper, 50.0);
        assert_eq!(r.lines[0].ratio_zookeeper(), Some(4.0));
        let json = r.to_json();
        assert_eq!(json[0]["zookeeper"], 50.0);
        assert_eq!(json[1]["zookeeper"], serde_json::Value::Null);
        assert_eq!(json[0]["higher_is_better"], true);
    }
}
