//! Side-by-side benchmarks of `pool-core` against deadpool and bb8, in one process and one run.
//!
//! `cargo run --release -p pool-bench -- micro [--quick]`

mod contenders;
mod micro;
mod report;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let suites: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let suites = if suites.is_empty() {
        vec!["micro"]
    } else {
        suites
    };
    for suite in suites {
        match suite {
            "micro" => micro::run(&if quick {
                micro::Plan::quick()
            } else {
                micro::Plan::full()
            }),
            other => {
                eprintln!("unknown suite `{other}`; available: micro");
                std::process::exit(2);
            }
        }
    }
}
