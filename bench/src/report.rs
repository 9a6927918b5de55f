//! Samples, medians and markdown tables.

/// Repeated measurements of one figure.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<f64>);

impl Samples {
    /// Adds one measurement.
    pub fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    /// The measurements as taken.
    pub fn raw(&self) -> Vec<f64> {
        self.0.clone()
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The median.
    pub fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// "median (min-max)".
    pub fn cell(&self, scale: f64, digits: usize) -> String {
        let v = self.sorted();
        let (lo, hi) = (
            v.first().copied().unwrap_or(f64::NAN),
            v.last().copied().unwrap_or(f64::NAN),
        );
        format!(
            "{:.*} ({:.*}–{:.*})",
            digits,
            self.median() * scale,
            digits,
            lo * scale,
            digits,
            hi * scale
        )
    }
}

/// Prints a markdown table.
pub fn table(header: &[String], rows: &[Vec<String>]) {
    println!("| {} |", header.join(" | "));
    println!("|{}", "---|".repeat(header.len()));
    for row in rows {
        println!("| {} |", row.join(" | "));
    }
    println!();
}

/// The `q`-quantile (0 to 1) of `sorted` by nearest rank; zero for an empty slice.
pub fn percentile(sorted: &[std::time::Duration], q: f64) -> std::time::Duration {
    if sorted.is_empty() {
        return std::time::Duration::ZERO;
    }
    // Nearest rank: the smallest value with at least q of the values at or below it.
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// "2^20 ops" for a power of two, "1000 ops" otherwise.
pub fn ops_label(ops: usize) -> String {
    if ops.is_power_of_two() && ops >= 1024 {
        format!("2^{} ops", ops.trailing_zeros())
    } else {
        format!("{ops} ops")
    }
}
