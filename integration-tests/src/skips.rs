//! Skips a person sees: the test harness captures what a passing test prints, and a skipped test
//! passes, so a skip is written straight to the process's standard error, and each test binary
//! ends with one summary of what it skipped and why.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Mutex, Once};

/// The skipped tests: (reason, test), in the order they came.
static SKIPPED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Says that the calling test is skipped, and why: at once on the terminal (past the harness's
/// capture of the test's output), and again in the summary its test binary prints as it exits.
///
/// The caller returns early, and the harness reports the test as passed. Where a skip must not
/// pass (a missing server when `CI` is set), panic instead.
pub fn skip(why: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let _ = writeln!(std::io::stderr().lock(), "!!!!! SKIPPED {test}: {why}");
    SKIPPED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((why.to_owned(), test));
    static SUMMARY: Once = Once::new();
    SUMMARY.call_once(|| {
        // SAFETY: `atexit` only stores the address of a function that lives as long as the
        // program; `summary` neither unwinds out of it nor calls `exit`.
        #[allow(unsafe_code)]
        let registered = unsafe { libc::atexit(summary) } == 0;
        if !registered {
            let _ = writeln!(
                std::io::stderr().lock(),
                "(no summary of the skipped tests will follow: atexit failed)"
            );
        }
    });
}

/// Prints the summary; run by the C library as the test binary exits, after the harness's own
/// summary.
extern "C" fn summary() {
    let _ = std::panic::catch_unwind(|| {
        let skipped = std::mem::take(&mut *SKIPPED.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = std::io::stderr()
            .lock()
            .write_all(report(&binary_name(), &skipped).as_bytes());
    });
}

/// The test binary's name without Cargo's hash (`redis`, not `redis-4d0ea214a1197e3f`).
fn binary_name() -> String {
    let path = std::env::args().next().unwrap_or_default();
    let file = std::path::Path::new(&path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "this test binary".to_owned());
    match file.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
        _ => file,
    }
}

/// The summary of `skipped` (reason, test) pairs: a paragraph per reason, in the order the
/// reasons came, naming its tests.
fn report(binary: &str, skipped: &[(String, String)]) -> String {
    let mut reasons: Vec<&str> = Vec::new();
    let mut by_reason: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (why, test) in skipped {
        let index = reasons.iter().position(|w| w == why).unwrap_or_else(|| {
            reasons.push(why);
            reasons.len() - 1
        });
        by_reason.entry(index).or_default().push(test);
    }
    let mut out = format!(
        "\n!!!!! SKIPPED: {} tests of {binary} did not run (the harness counts them as passed)\n",
        skipped.len()
    );
    for (index, mut tests) in by_reason {
        tests.sort_unstable();
        out += &format!("!!!!! {} skipped: {}\n", tests.len(), reasons[index]);
        let mut line = String::new();
        for test in tests {
            if !line.is_empty() && line.len() + test.len() > 90 {
                out += &format!("!!!!!     {line}\n");
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line += test;
        }
        out += &format!("!!!!!     {line}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::report;

    #[test]
    fn the_summary_groups_tests_by_reason() {
        let skipped = [
            ("no Redis".to_owned(), "b".to_owned()),
            ("no MySQL".to_owned(), "c".to_owned()),
            ("no Redis".to_owned(), "a".to_owned()),
        ];
        let report = report("redis", &skipped);
        assert!(report.contains("SKIPPED: 3 tests of redis"), "{report}");
        assert!(
            report.contains("2 skipped: no Redis\n!!!!!     a b\n"),
            "{report}"
        );
        assert!(
            report.contains("1 skipped: no MySQL\n!!!!!     c\n"),
            "{report}"
        );
        assert!(
            report.find("no Redis") < report.find("no MySQL"),
            "{report}"
        );
    }
}
