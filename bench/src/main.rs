//! Side-by-side benchmarks of `pool-core` against deadpool, bb8, qp and mobc, in one process
//! and one run.
//!
//! `cargo run --release -p pool-bench -- [micro] [realistic] [spike] [memory] [postgres] [mysql]
//! [redis] [--quick] [--fresh-only]` (no suite: all of them; `--fresh-only` keeps `micro` to its
//! fresh-pool tables)

mod contenders;
mod isolate;
mod memory;
mod micro;
mod realistic;
mod report;
mod roundtrip;
mod servers;
mod spike;

use servers::Outcome;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "memory-probe") {
        memory::probe_main(&args[1..]);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let fresh_only = args.iter().any(|a| a == "--fresh-only");
    let suites: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let suites = if suites.is_empty() {
        vec![
            "micro",
            "realistic",
            "spike",
            "memory",
            "postgres",
            "mysql",
            "redis",
        ]
    } else {
        suites
    };
    let server_plan = || {
        if quick {
            servers::Plan::quick()
        } else {
            servers::Plan::full()
        }
    };
    let mut failed = false;
    for suite in suites {
        let outcome = match suite {
            "micro" => {
                let plan = if quick {
                    micro::Plan::quick()
                } else {
                    micro::Plan::full()
                };
                micro::run(&micro::Plan { fresh_only, ..plan });
                Outcome::Done
            }
            "realistic" => {
                realistic::run(&if quick {
                    realistic::Plan::quick()
                } else {
                    realistic::Plan::full()
                });
                Outcome::Done
            }
            "spike" => {
                spike::run(&if quick {
                    spike::Plan::quick()
                } else {
                    spike::Plan::full()
                });
                Outcome::Done
            }
            "memory" => {
                memory::run(&if quick {
                    memory::Plan::quick()
                } else {
                    memory::Plan::full()
                });
                Outcome::Done
            }
            "postgres" => servers::run::<servers::postgres::Postgres>(&server_plan()),
            "mysql" => servers::run::<servers::mysql::Mysql>(&server_plan()),
            "redis" => servers::run::<servers::redis::Redis>(&server_plan()),
            other => {
                eprintln!(
                    "unknown suite `{other}`; available: micro, realistic, spike, memory, postgres, mysql, redis"
                );
                std::process::exit(2);
            }
        };
        // A server that is not there skips its suite; one that fails mid-run is an error, so
        // a suite that stopped working cannot pass unnoticed.
        failed |= outcome == Outcome::Failed;
    }
    if failed {
        std::process::exit(1);
    }
}
