//! What the figures were measured on: they mean little without it.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct Machine {
    pub cpu_model: String,
    pub logical_cpus: usize,
    pub memory: String,
    pub kernel: String,
    /// The filesystem holding the benchmark's data directory.
    pub filesystem: String,
    pub date_utc: String,
    /// 1, 5 and 15 minute load averages when the run started: other work
    /// on the machine shows up in every figure.
    pub load_average: Option<String>,
    /// The commit the benchmark was built from, if git can tell.
    pub revision: Option<Revision>,
}

#[derive(Debug, Clone)]
pub struct Revision {
    pub commit: String,
    /// The working tree differs from the commit in a measured crate.
    pub dirty: bool,
}

impl Machine {
    /// The lines every results file opens with after its title and
    /// summary: date, CPU, memory, load, revision, and the command.
    pub fn markdown_facts(&self, command: &str) -> String {
        let mut s = format!(
            "- Date: {}\n- CPU: {}, {} logical CPUs\n- Memory: {}\n- Filesystem: {}\n",
            self.date_utc, self.cpu_model, self.logical_cpus, self.memory, self.filesystem
        );
        if let Some(load) = &self.load_average {
            s.push_str(&format!("- Load average at the start: {load}\n"));
        }
        if let Some(rev) = &self.revision {
            let dirty = if rev.dirty { " (modified)" } else { "" };
            s.push_str(&format!("- Revision: {}{dirty}\n", rev.commit));
        }
        s.push_str(&format!("\nCommand:\n\n```sh\n{command}\n```\n"));
        s
    }

    pub fn describe(data_dir: &Path) -> Self {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let logical_cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or_else(|_| count_processors(&cpuinfo));
        Self {
            cpu_model: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".to_owned()),
            logical_cpus,
            memory: fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|m| mem_total(&m))
                .unwrap_or_else(|| "unknown".to_owned()),
            kernel: kernel(),
            filesystem: filesystem_of(data_dir),
            date_utc: utc_now(),
            load_average: fs::read_to_string("/proc/loadavg")
                .ok()
                .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")),
            revision: revision(),
        }
    }
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

fn count_processors(cpuinfo: &str) -> usize {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count()
        .max(1)
}

fn mem_total(meminfo: &str) -> Option<String> {
    let kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)))
}

fn kernel() -> String {
    let read = |p: &str| fs::read_to_string(p).map(|s| s.trim().to_owned()).ok();
    match (
        read("/proc/sys/kernel/ostype"),
        read("/proc/sys/kernel/osrelease"),
    ) {
        (Some(os), Some(rel)) => format!("{os} {rel}"),
        (None, Some(rel)) => rel,
        _ => std::env::consts::OS.to_owned(),
    }
}

/// The mount holding `dir`: its type, device and options, from the longest
/// mount point that is a prefix of the directory's real path.
fn filesystem_of(dir: &Path) -> String {
    let real = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [device, point, fstype, options, ..] = f[..] else {
            continue;
        };
        // Mount points escape spaces as \040.
        let point = point.replace("\\040", " ");
        if !real.starts_with(&point) {
            continue;
        }
        let len = point.len();
        // Later lines win on ties: they are mounted over the earlier ones.
        if best.as_ref().is_none_or(|(l, _)| len >= *l) {
            best = Some((
                len,
                format!("{fstype} on {device} (mounted at {point}, {options})"),
            ));
        }
    }
    best.map_or_else(|| "unknown".to_owned(), |(_, s)| s)
}

/// What the storage figures depend on, relative to the workspace root.
const MEASURED_PATHS: &[&str] = &[
    "bench/src/storage",
    "bench/src/measure.rs",
    "crates/hearth-core",
    "crates/hearth-kv",
    "crates/hearth-d1",
    "crates/hearth-r2",
];

fn revision() -> Option<Revision> {
    let out = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let rev = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    if rev.is_empty() {
        return None;
    }
    // The benchmark compiles whatever the working tree holds for the crates
    // it measures, which may differ from the commit.
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--"])
        .args(MEASURED_PATHS)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .ok()
        .is_some_and(|o| o.status.success() && !o.stdout.is_empty());
    Some(Revision { commit: rev, dirty })
}

fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_utc(secs)
}

/// `YYYY-MM-DD HH:MM UTC` for seconds since the epoch.
fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01, by splitting
/// time into 400-year eras whose years start in March (so the leap day is
/// the last day of a year).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_utc(1_709_210_096), "2024-02-29 12:34 UTC");
        assert_eq!(format_utc(1_735_689_599), "2024-12-31 23:59 UTC");
    }

    #[test]
    fn proc_parsing() {
        let cpu = "processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\nprocessor\t: 1\n";
        assert_eq!(cpu_model(cpu).as_deref(), Some("Some CPU @ 2.0GHz"));
        assert_eq!(count_processors(cpu), 2);
        let mem = "MemTotal:       24731708 kB\nMemFree: 1 kB\n";
        assert_eq!(mem_total(mem).as_deref(), Some("23.6 GiB"));
    }
}
