//! What a benchmark report carries besides the figures: the machine, and the spread of repeated runs.

use std::fs;

use super::ScenarioResult;

/// The machine a benchmark ran on, so runs can be compared across machines and over time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// The CPU model, from `/proc/cpuinfo` (`"AMD EPYC"`), `"?"` where it cannot be read.
    pub cpu_model: String,
    /// The logical CPUs this process may use (`std::thread::available_parallelism`).
    pub cores: usize,
    /// The logical CPUs online (`/proc/cpuinfo`'s `processor` lines), `0` where unknown.
    pub cpus_online: usize,
    /// The kernel release (`/proc/sys/kernel/osrelease`), `"?"` where unknown.
    pub kernel: String,
    /// Whether the CPU flags say it runs under a hypervisor (a virtual machine).
    pub virtual_machine: bool,
}

/// Describes this machine (Linux's `/proc`; elsewhere mostly `"?"`).
pub fn machine() -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_owned())
        })
    };
    Machine {
        cpu_model: field("model name").unwrap_or_else(|| "?".to_owned()),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpus_online: cpuinfo
            .lines()
            .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
            .count(),
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "?".to_owned()),
        virtual_machine: field("flags")
            .is_some_and(|f| f.split_whitespace().any(|flag| flag == "hypervisor")),
    }
}

/// Repeated runs of one scenario, summarised: the median run by operations per second, and the
/// spread of all runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Repeated {
    /// The run with the median operations per second (the upper median for an even count).
    pub median: ScenarioResult,
    /// Every run's operations per second, in the order they ran.
    pub ops_per_second: Vec<f64>,
    /// Every run's client CPU microseconds per operation, in the order they ran.
    pub client_cpu_us_per_op: Vec<f64>,
}

impl Repeated {
    /// Summarises `runs`; `None` when there are none.
    pub fn of(runs: Vec<ScenarioResult>) -> Option<Repeated> {
        let ops_per_second: Vec<f64> = runs.iter().map(ScenarioResult::ops_per_second).collect();
        let client_cpu_us_per_op = runs
            .iter()
            .map(ScenarioResult::client_cpu_us_per_op)
            .collect();
        let mut sorted = runs;
        sorted.sort_by(|a, b| a.ops_per_second().total_cmp(&b.ops_per_second()));
        let mid = sorted.len() / 2;
        let median = sorted.into_iter().nth(mid)?;
        Some(Repeated {
            median,
            ops_per_second,
            client_cpu_us_per_op,
        })
    }

    /// The slowest and fastest run's operations per second.
    pub fn min_max(&self) -> (f64, f64) {
        let min = self
            .ops_per_second
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let max = self
            .ops_per_second
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    }

    /// The spread as a share of the median's operations per second: `(max - min) / median`, in
    /// percent; `0` for a single run.
    pub fn spread_percent(&self) -> f64 {
        let (min, max) = self.min_max();
        let median = self.median.ops_per_second();
        if self.ops_per_second.len() < 2 || median <= 0.0 {
            0.0
        } else {
            (max - min) / median * 100.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ops: u64) -> ScenarioResult {
        ScenarioResult {
            name: "x".into(),
            operations: ops,
            seconds: 1.0,
            client_cpu_seconds: ops as f64 * 1e-6,
            server_cpu_seconds: None,
            notes: String::new(),
        }
    }

    #[test]
    fn repeated_runs_report_the_median_and_the_spread() {
        let r = Repeated::of(vec![run(90), run(110), run(100)]).unwrap();
        assert_eq!(r.median.operations, 100);
        assert_eq!(r.ops_per_second, vec![90.0, 110.0, 100.0]);
        assert_eq!(r.min_max(), (90.0, 110.0));
        assert!((r.spread_percent() - 20.0).abs() < 1e-9);
        let one = Repeated::of(vec![run(5)]).unwrap();
        assert_eq!(one.spread_percent(), 0.0);
        assert!(Repeated::of(Vec::new()).is_none());
    }

    #[test]
    fn the_machine_is_described() {
        let m = machine();
        assert!(!m.cpu_model.is_empty() && !m.kernel.is_empty());
        if cfg!(target_os = "linux") {
            assert!(m.cores >= 1 && m.cpus_online >= m.cores, "{m:?}");
        }
    }
}
