//! The soak: a mixed load (reads, writes, transactions) on PostgreSQL, MySQL and Redis at
//! once, each pool behind a fault proxy, while a fault is injected every few seconds: sessions
//! killed by the server, established connections cut, a black hole, slow traffic, connections
//! cut after a few bytes, a server restarted, a connection limit below the pool's size. It
//! ends with a summary table and one line:
//!
//! ```text
//! soak summary: <N> ok, <M> failed, <L> leaked, <B> broken, max acquire <X> ms
//! ```
//!
//! Failures are expected while a fault is on; what must not happen: a session left on the
//! server after its pool closed or a connection never given back (leaked), a connection
//! handed out that fails with no fault anywhere near or that answers another request's
//! question (broken), an acquire that fails with no fault near, an acquire past its
//! deadline, a transaction applied in part, a write counted twice or lost unreported.
//!
//! `cargo test -p integration-tests --test soak -- --nocapture` runs it for
//! [`DEFAULT_SECS`] seconds (what CI runs); `SOAK_SECS=600` runs longer. It stops and starts
//! the local servers (when this machine can, see `faults::server`), so it is a test binary
//! of its own.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use integration_tests::faults::backend::{pool, Backend, Mysql, Postgres, Redis};
use integration_tests::faults::load::Rng;
use integration_tests::faults::server::{cannot_restart, Outage, RedisConfig};
use integration_tests::faults::{chain, Tenant};
use integration_tests::invariants::{server_agrees, Acquires, AGREE_WITHIN};
use integration_tests::proxy::{Fault, Proxy};
use integration_tests::{server, Kind};
use pool_drivers::{Config, Pool};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long the soak runs without `SOAK_SECS`: what CI runs.
const DEFAULT_SECS: u64 = 40;

/// A fault starts this often.
const FAULT_EVERY: Duration = Duration::from_secs(3);

/// Tasks per server.
const TASKS: usize = 6;

/// How long one request may take.
const REQUEST_LIMIT: Duration = Duration::from_secs(3);

/// How close to a fault (before its start, after its end) a failure counts as its doing.
const GRACE: Duration = Duration::from_secs(1);

/// When the faults on one server were on: `(start, end)`, `end` `None` while still on.
#[derive(Default)]
struct FaultLog(Mutex<Vec<(Instant, Option<Instant>)>>);

impl FaultLog {
    fn begin(&self) -> usize {
        let mut log = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        log.push((Instant::now(), None));
        log.len() - 1
    }

    fn end(&self, i: usize) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)[i].1 = Some(Instant::now());
    }

    /// Whether a fault was on at any time from `from - GRACE` to `to + GRACE`.
    fn near(&self, from: Instant, to: Instant) -> bool {
        let log = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        log.iter()
            .any(|&(start, end)| start <= to + GRACE && end.is_none_or(|end| from <= end + GRACE))
    }
}

/// What one server's load saw.
#[derive(Default, Debug)]
struct Tally {
    ok: u64,
    failed: BTreeMap<String, u64>,
    /// Connections handed out that failed with no fault near, or answered wrongly.
    broken: Vec<String>,
    /// Acquires that failed with no fault near.
    unexplained: Vec<String>,
    writes_ok: i64,
    writes_failed: i64,
}

/// A short name for what went wrong, from an error's text.
fn reason(stage: &str, text: &str) -> String {
    let lower = text.to_lowercase();
    let cause = [
        ("refused", "connection refused"),
        ("reset by peer", "connection reset"),
        ("connection reset", "connection reset"),
        ("broken pipe", "broken pipe"),
        ("bytes remaining", "connection cut mid-reply"),
        ("too many", "too many connections"),
        ("terminat", "session terminated"),
        ("shutdown", "server shutting down"),
        ("shutting down", "server shutting down"),
        ("connect timeout", "connect timeout"),
        ("took longer than", "connect timeout"),
        ("timed out", "timed out"),
        ("closed", "connection closed"),
        ("eof", "connection closed"),
        ("unexpected end", "connection closed"),
        ("gone away", "connection closed"),
        ("lost connection", "connection closed"),
    ]
    .iter()
    .find(|(needle, _)| lower.contains(needle))
    .map_or_else(
        || text.chars().take(60).collect(),
        |(_, name)| (*name).to_owned(),
    );
    format!("{stage}: {cause}")
}

/// One server under load.
struct Side<B: Backend> {
    tenant: Arc<Tenant>,
    proxy: Arc<Proxy>,
    pool: Pool<B::Manager>,
    acquires: Arc<Acquires>,
    faults: Arc<FaultLog>,
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    restartable: bool,
    /// Redis keeps no data across a restart: the write count cannot be checked then.
    lost_data: bool,
}

impl<B: Backend> Side<B> {
    async fn start(server: &integration_tests::Server, seed: u64) -> Side<B> {
        let tenant = Arc::new(Tenant::create(B::KIND, server, "soak").await);
        let proxy = Arc::new(Proxy::start(tenant.server_addr()).await);
        let mut config = Config::default();
        config.max_size = 6;
        config.acquire_timeout = Some(Duration::from_secs(2));
        config.connect_timeout = Duration::from_secs(1);
        config.check_timeout = Duration::from_millis(500);
        config.reset_timeout = Duration::from_millis(500);
        config.connect_backoff_max = Duration::from_secs(1);
        config.keepalive_interval = Some(Duration::from_secs(1));
        config.maintenance_interval = Duration::from_millis(200);
        let pool = pool::<B>(&tenant, proxy.addr(), config);
        let mut side = Side {
            tenant,
            proxy,
            pool,
            acquires: Arc::new(Acquires::new()),
            faults: Arc::new(FaultLog::default()),
            tally: Arc::new(Mutex::new(Tally::default())),
            stop: Arc::new(AtomicBool::new(false)),
            tasks: Vec::new(),
            restartable: cannot_restart(B::KIND).is_none(),
            lost_data: false,
        };
        for i in 0..TASKS {
            side.tasks.push(tokio::spawn(worker::<B>(
                side.pool.clone(),
                side.tenant.name().to_owned(),
                Arc::clone(&side.acquires),
                Arc::clone(&side.faults),
                Arc::clone(&side.tally),
                Arc::clone(&side.stop),
                seed * 100 + i as u64,
            )));
        }
        side
    }

    /// Injects `fault` (or the nearest one this server and machine allow); returns its name.
    async fn inject(&mut self, fault: usize) -> &'static str {
        let window = self.faults.begin();
        let name = match fault {
            0 => {
                self.tenant.kill_sessions().await.unwrap();
                "kill sessions"
            }
            1 if self.restartable => {
                let mut outage = Outage::begin(B::KIND, &[&self.tenant]).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                outage.end().await;
                self.lost_data |= B::KIND == Kind::Redis;
                "restart server"
            }
            2 => {
                self.proxy.set(Fault::BlackHole);
                tokio::time::sleep(Duration::from_millis(1500)).await;
                self.proxy.set(Fault::Pass);
                "black hole"
            }
            3 => {
                self.proxy.set(Fault::Latency(Duration::from_millis(700)));
                tokio::time::sleep(Duration::from_secs(2)).await;
                self.proxy.set(Fault::Pass);
                "slow traffic"
            }
            5 => {
                self.proxy.set(Fault::CutAfter(300));
                tokio::time::sleep(Duration::from_secs(1)).await;
                self.proxy.set(Fault::Pass);
                "cut after 300 bytes"
            }
            6 if B::KIND == Kind::Postgres => {
                self.tenant.set_connection_limit(Some(2)).await.unwrap();
                tokio::time::sleep(Duration::from_secs(2)).await;
                self.tenant.set_connection_limit(None).await.unwrap();
                "connection limit"
            }
            6 if B::KIND == Kind::Redis => {
                let mut limit = RedisConfig::set(&self.tenant, "maxclients", "10000");
                let room = limit.connected_clients() + 2;
                limit.apply(&room.to_string()).unwrap();
                tokio::time::sleep(Duration::from_secs(2)).await;
                drop(limit);
                "connection limit"
            }
            // Cut every established connection: also what stands in for a restart this
            // machine cannot do, and for a limit MySQL cannot enforce per user (MariaDB
            // forgets a user's sessions once they reset).
            _ => {
                self.proxy.cut_all();
                "cut all connections"
            }
        };
        self.faults.end(window);
        name
    }

    /// Injects a fault every [`FAULT_EVERY`] until `until`, the kinds in turn from `first`;
    /// returns their names.
    async fn inject_until(&mut self, until: Instant, first: usize) -> Vec<String> {
        let mut names = Vec::new();
        let mut fault = first;
        while Instant::now() < until {
            let next = Instant::now() + FAULT_EVERY;
            names.push(format!("{}: {}", B::KIND, self.inject(fault % 7).await));
            fault += 1;
            tokio::time::sleep_until(next).await;
        }
        names
    }

    /// Stops the load and checks what must hold; returns the server's row of the summary.
    async fn finish(mut self) -> Row {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks.drain(..) {
            task.await.expect("a soak task panicked");
        }
        let mut problems = Vec::new();
        // Upkeep (the reset of a returned connection, a keepalive check) counts the connection
        // it works on as in use until it is done, which takes at most the reset and the check
        // timeouts; a connection still out after that is leaked.
        let config = self.pool.config();
        let back_by = Instant::now() + config.reset_timeout + config.check_timeout + AGREE_WITHIN;
        let (stopped, mut status) = (Instant::now(), self.pool.status());
        let out = status.in_use;
        while status.in_use > 0 && Instant::now() < back_by {
            tokio::time::sleep(Duration::from_millis(20)).await;
            status = self.pool.status();
        }
        if out > 0 && status.in_use == 0 {
            eprintln!(
                "{}: {out} connections came back from upkeep within {:?}",
                B::KIND,
                stopped.elapsed()
            );
        }
        let mut leaked = status.in_use;
        if leaked > 0 {
            problems.push(format!("{leaked} connections never given back: {status:?}"));
        }
        let settle = Instant::now() + Duration::from_secs(3);
        loop {
            match server_agrees(&self.pool, &[&self.tenant]).await {
                Ok(()) => break,
                Err(e) if Instant::now() > settle => {
                    problems.push(format!("the server never agreed with the pool: {e}"));
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        match self.tenant.sessions_in_transaction().await {
            Ok(0) => {}
            other => problems.push(format!("sessions inside a transaction: {other:?}")),
        }
        let late = self.acquires.late();
        if !late.is_empty() {
            problems.push(format!("acquires past their deadline: {late:?}"));
        }
        if !self.pool.close_and_wait(Duration::from_secs(2)).await {
            problems.push(format!("the pool did not drain: {:?}", self.pool.status()));
        }
        let gone_by = Instant::now() + Duration::from_secs(1);
        let mut left = self.tenant.sessions().await.unwrap_or(usize::MAX);
        while left > 0 && Instant::now() < gone_by {
            tokio::time::sleep(Duration::from_millis(50)).await;
            left = self.tenant.sessions().await.unwrap_or(usize::MAX);
        }
        if left > 0 {
            problems.push(format!(
                "{left} sessions left on the server after the close"
            ));
            leaked += left;
        }
        let tally = std::mem::take(&mut *self.tally.lock().unwrap_or_else(PoisonError::into_inner));
        let [a, b, c] = self.tenant.totals().await.unwrap();
        if a + b != 0 {
            problems.push(format!(
                "a transaction was applied in part: a = {a}, b = {b}"
            ));
        }
        if !self.lost_data
            && !(tally.writes_ok..=tally.writes_ok + tally.writes_failed).contains(&c)
        {
            problems.push(format!(
                "{c} writes on the server, {} acknowledged, {} failed",
                tally.writes_ok, tally.writes_failed
            ));
        }
        if !tally.unexplained.is_empty() {
            problems.push(format!(
                "{} acquires failed with no fault near: {:?}",
                tally.unexplained.len(),
                &tally.unexplained[..tally.unexplained.len().min(3)]
            ));
        }
        Row {
            kind: B::KIND,
            ok: tally.ok,
            failed: tally.failed,
            leaked,
            broken: tally.broken,
            max_acquire: self.acquires.longest(),
            problems,
        }
    }
}

/// One task of the load: acquire, then a read (half the time), a write or a transfer.
async fn worker<B: Backend>(
    pool: Pool<B::Manager>,
    tenant: String,
    acquires: Arc<Acquires>,
    faults: Arc<FaultLog>,
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    static NEXT: AtomicI64 = AtomicI64::new(1);
    let mut rng = Rng::new(seed);
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let op = rng.below(4);
        let failure = match acquires.get(&pool).await {
            Err(e) => {
                let text = chain(&e);
                let near = faults.near(started, Instant::now());
                let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
                if !near {
                    tally.unexplained.push(text.clone());
                }
                Some(reason("acquire", &text))
            }
            Ok(mut conn) => {
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                let request = async {
                    match op {
                        0 | 1 => match B::echo(&mut conn, n).await {
                            Ok(got) if got == n => Ok(()),
                            Ok(got) => Err((true, format!("sent {n}, got the answer {got}"))),
                            Err(e) => Err((false, e)),
                        },
                        2 => B::write(&mut conn, &tenant).await.map_err(|e| (false, e)),
                        _ => B::transfer(&mut conn, &tenant, 1)
                            .await
                            .map_err(|e| (false, e)),
                    }
                };
                let result = tokio::time::timeout(REQUEST_LIMIT, request)
                    .await
                    .unwrap_or_else(|_| Err((false, "request timed out".to_owned())));
                drop(conn);
                let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
                match result {
                    Ok(()) => {
                        tally.ok += 1;
                        tally.writes_ok += i64::from(op == 2);
                        None
                    }
                    Err((wrong, text)) => {
                        tally.writes_failed += i64::from(op == 2);
                        if wrong || !faults.near(started, Instant::now()) {
                            tally.broken.push(text.clone());
                        }
                        let stage = ["read", "read", "write", "transaction"][op as usize];
                        Some(reason(stage, &text))
                    }
                }
            }
        };
        if let Some(reason) = failure {
            *tally
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .failed
                .entry(reason)
                .or_default() += 1;
            // A real client would not retry in a tight loop either.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One server's line of the summary.
struct Row {
    kind: Kind,
    ok: u64,
    failed: BTreeMap<String, u64>,
    leaked: usize,
    broken: Vec<String>,
    max_acquire: Duration,
    problems: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak() {
    let (Some(pg), Some(my), Some(rd)) = (
        server(Kind::Postgres).await,
        server(Kind::Mysql).await,
        server(Kind::Redis).await,
    ) else {
        return;
    };
    let secs = std::env::var("SOAK_SECS")
        .ok()
        .map(|s| s.parse::<u64>().expect("SOAK_SECS is a number of seconds"))
        .unwrap_or(DEFAULT_SECS);
    let seed = u64::from(std::process::id());
    let mut postgres = Side::<Postgres>::start(&pg, seed).await;
    let mut mysql = Side::<Mysql>::start(&my, seed + 1).await;
    let mut redis = Side::<Redis>::start(&rd, seed + 2).await;
    for kind in [Kind::Postgres, Kind::Mysql, Kind::Redis] {
        if let Some(why) = cannot_restart(kind) {
            eprintln!("soak: {why}; its restarts are replaced by cut connections");
        }
    }

    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    // Each server gets a fault every few seconds, all seven kinds in turn (each server
    // starting at another one), while the others may be having theirs.
    let (a, b, c) = tokio::join!(
        postgres.inject_until(until, 0),
        mysql.inject_until(until, 2),
        redis.inject_until(until, 4),
    );
    let mut injected: BTreeMap<String, u64> = BTreeMap::new();
    for name in a.into_iter().chain(b).chain(c) {
        *injected.entry(name).or_default() += 1;
    }
    let ran = started.elapsed();
    // Let the last fault's effects pass before the load stops.
    tokio::time::sleep(GRACE * 2).await;
    let rows = [
        postgres.finish().await,
        mysql.finish().await,
        redis.finish().await,
    ];

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nsoak: {ran:.0?}, {TASKS} tasks per server, faults injected:"
    );
    for (fault, n) in &injected {
        let _ = writeln!(out, "  {n:>3} x {fault}");
    }
    let _ = writeln!(
        out,
        "\n{:<12} {:>9} {:>7} {:>7} {:>7} {:>12}",
        "server", "ok", "failed", "leaked", "broken", "max acquire"
    );
    let (mut ok, mut failed, mut leaked, mut broken) = (0, 0, 0, 0);
    let mut max = Duration::ZERO;
    for row in &rows {
        let row_failed: u64 = row.failed.values().sum();
        let _ = writeln!(
            out,
            "{:<12} {:>9} {:>7} {:>7} {:>7} {:>9} ms",
            row.kind.to_string(),
            row.ok,
            row_failed,
            row.leaked,
            row.broken.len(),
            row.max_acquire.as_millis()
        );
        ok += row.ok;
        failed += row_failed;
        leaked += row.leaked;
        broken += row.broken.len();
        max = max.max(row.max_acquire);
    }
    let _ = writeln!(out, "\nfailed by reason:");
    for row in &rows {
        for (why, n) in &row.failed {
            let _ = writeln!(out, "  {:<12} {n:>6}  {why}", row.kind.to_string());
        }
    }
    let _ = writeln!(
        out,
        "\nsoak summary: {ok} ok, {failed} failed, {leaked} leaked, {broken} broken, max acquire {} ms",
        max.as_millis()
    );
    // Past the test harness's capture, so CI's log has the table even without --nocapture.
    let mut stdout = std::io::stdout().lock();
    let _ = std::io::Write::write_all(&mut stdout, out.as_bytes());
    let _ = std::io::Write::flush(&mut stdout);
    drop(stdout);

    let problems: Vec<String> = rows
        .iter()
        .flat_map(|row| {
            let broken = row
                .broken
                .iter()
                .take(3)
                .map(move |b| format!("{}: handed out broken: {b}", row.kind));
            row.problems
                .iter()
                .map(move |p| format!("{}: {p}", row.kind))
                .chain(broken)
        })
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!((leaked, broken), (0, 0));
    assert!(
        ok > 0 && injected.len() >= 3,
        "the soak did work and broke things"
    );
}
