//! The `micro` suite: acquire + release throughput with a unit resource, every pool side by
//! side in one run.
//!
//! `tasks` tasks loop on one operation: acquire, optionally hold across one `yield_now`
//! ("yield": connections are scarce, most acquires wait), release. Two regimes, each a table
//! per runtime flavor:
//!
//! - **Fresh pool per sample** (the main table): every sample builds a new pool the way its
//!   users do, opening connections on demand, so the timing includes the pool's start under
//!   load. This is what a user's own benchmark measures, and where a strict FIFO hand-off
//!   shows its convoys.
//! - **Pre-filled**: one pool per table cell with every connection open before anything is
//!   measured, reused by every sample; the steady state.
//!
//! "yield" rows also get the runtime floor: the same tasks looping the same `yield_now`s with
//! no pool at all, so the pool's own cost above it can be read. Last, one task alone on a
//! pre-filled pool: the uncontended acquire + release.
//!
//! Each pool runs on a thread and runtime of its own per flavor (see [`crate::isolate`]); a
//! pool that does not finish a sample within its bound is reported as "hangs" and measured no
//! more.

use std::any::Any;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use crate::contenders::{
    Bb8, Contender, Deadpool, Mobc, Ours, OursDefault, OursResetPerCheckout, Qp, Setup,
};
use crate::isolate::{limit, Flavor, Gone, Lane};
use crate::report::{ops_label, table, Samples};

/// What the run measures and how long.
pub struct Plan {
    /// Operations per sample.
    pub ops: usize,
    /// Samples per figure.
    pub samples: usize,
    /// Pool sizes.
    pub sizes: &'static [usize],
    /// Concurrent tasks.
    pub tasks: &'static [usize],
    /// Only the fresh-pool tables (the regime users measure) and the uncontended figure, in
    /// about half the time.
    pub fresh_only: bool,
}

impl Plan {
    /// The full run of the issue: 1,048,576 operations, 7 samples.
    pub fn full() -> Self {
        Plan {
            ops: 1 << 20,
            samples: 7,
            sizes: &[8, 32],
            tasks: &[16, 64, 256],
            fresh_only: false,
        }
    }

    /// A short run that only proves the suite works.
    pub fn quick() -> Self {
        Plan {
            ops: 1 << 14,
            samples: 3,
            sizes: &[8],
            tasks: &[16, 256],
            fresh_only: false,
        }
    }
}

/// How the pool of a sample comes to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Regime {
    /// Built for the sample, connections opened on demand.
    Fresh,
    /// Built once per cell with all its connections open, reused by every sample.
    Prefilled,
}

impl Regime {
    /// The words that open its table headings and summary groups.
    fn label(self) -> &'static str {
        match self {
            Regime::Fresh => "fresh-pool",
            Regime::Prefilled => "pre-filled",
        }
    }

    /// What the regime is, for the table heading.
    fn heading(self) -> &'static str {
        match self {
            Regime::Fresh => "fresh pool per sample, connections opened on demand",
            Regime::Prefilled => {
                "pre-filled pool (all connections opened before measuring, one pool per row reused by every sample)"
            }
        }
    }
}

/// The shape of one measured configuration.
#[derive(Clone, Copy, Debug)]
struct Shape {
    size: usize,
    tasks: usize,
    hold: bool,
}

/// A pool kept between the samples of a pre-filled cell.
type Kept = Box<dyn Any + Send>;

/// Takes one sample of `ops` operations and says how many seconds each took; gets the kept
/// pool of a pre-filled cell (`None` at its first sample) and hands it back.
type Sampler = fn(&Runtime, Option<Kept>, Regime, Shape, usize) -> (Option<Kept>, f64);

/// What a column is, for the ratios.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Our pool with its defaults: the ratios are against this one.
    Ours,
    /// Our pool in another configuration.
    OursVariant,
    /// Another pool.
    Peer,
    /// No pool: the runtime floor of the "yield" rows.
    Floor,
}

/// One column: its lane and how it samples.
struct Column {
    lane: Lane,
    kind: Kind,
    sampler: Sampler,
}

impl Column {
    fn of<C: Contender>(kind: Kind) -> Self {
        Column {
            lane: Lane::new(C::NAME),
            kind,
            sampler: pool_sample::<C>,
        }
    }

    /// Whether this column belongs in a table of `regime` (the reset-per-checkout variant is
    /// a fresh-pool figure only; the floor is a column of its own table).
    fn in_regime(&self, regime: Regime) -> bool {
        match self.kind {
            Kind::OursVariant => regime == Regime::Fresh,
            Kind::Floor => false,
            Kind::Ours | Kind::Peer => true,
        }
    }
}

/// What one column measured in one cell: its samples, or why it has none.
type Figure = Result<Samples, Gone>;

/// One row of a table.
struct Row {
    shape: Shape,
    /// Per column, in column order (the floor's is `Gone::Failed`-free only for "yield" rows).
    figures: Vec<Option<Figure>>,
}

/// Seconds per operation for `ops` operations spread over `shape.tasks` tasks.
async fn drive<C: Contender>(pool: &C, shape: Shape, ops: usize) -> f64 {
    let per_task = (ops / shape.tasks).max(1);
    let start = Instant::now();
    let tasks: Vec<_> = (0..shape.tasks)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    let conn = pool.get().await;
                    if shape.hold {
                        tokio::task::yield_now().await;
                    }
                    drop(conn);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("bench task");
    }
    start.elapsed().as_secs_f64() / (per_task * shape.tasks) as f64
}

/// The [`Sampler`] of pool `C`.
fn pool_sample<C: Contender>(
    rt: &Runtime,
    kept: Option<Kept>,
    regime: Regime,
    shape: Shape,
    ops: usize,
) -> (Option<Kept>, f64) {
    rt.block_on(async {
        let pool = match kept {
            Some(kept) => *kept.downcast::<C>().expect("the column's own pool"),
            None => {
                let min_idle = match regime {
                    Regime::Fresh => 0,
                    Regime::Prefilled => shape.size,
                };
                C::build(&Setup::unit(shape.size, min_idle)).await
            }
        };
        let secs = drive(&pool, shape, ops).await;
        match regime {
            // Dropped here, inside the runtime, like a user's pool at the end of `main`.
            Regime::Fresh => (None, secs),
            Regime::Prefilled => (Some(Box::new(pool) as Kept), secs),
        }
    })
}

/// The runtime floor's [`Sampler`]: the same tasks and `yield_now`s, no pool.
fn floor_sample(
    rt: &Runtime,
    _: Option<Kept>,
    _: Regime,
    shape: Shape,
    ops: usize,
) -> (Option<Kept>, f64) {
    rt.block_on(async {
        let per_task = (ops / shape.tasks).max(1);
        let start = Instant::now();
        let tasks: Vec<_> = (0..shape.tasks)
            .map(|_| {
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("bench task");
        }
        (
            None,
            start.elapsed().as_secs_f64() / (per_task * shape.tasks) as f64,
        )
    })
}

/// Every column of the suite, ours first so that the peers' bounds have a reference.
fn columns() -> Vec<Column> {
    vec![
        Column::of::<Ours<OursDefault>>(Kind::Ours),
        Column::of::<Ours<OursResetPerCheckout>>(Kind::OursVariant),
        Column::of::<Deadpool>(Kind::Peer),
        Column::of::<Bb8>(Kind::Peer),
        Column::of::<Qp>(Kind::Peer),
        Column::of::<Mobc>(Kind::Peer),
        Column {
            lane: Lane::new("runtime floor"),
            kind: Kind::Floor,
            sampler: floor_sample,
        },
    ]
}

/// Measures one cell: an unmeasured warm-up sample per column, then `plan.samples` rounds in
/// which the columns take turns. `active` says which columns take part.
fn measure(
    columns: &mut [Column],
    active: &[bool],
    flavor: Flavor,
    regime: Regime,
    shape: Shape,
    ops: usize,
    samples: usize,
) -> Vec<Option<Figure>> {
    let mut figures: Vec<Option<Figure>> = active
        .iter()
        .map(|&a| a.then(|| Ok(Samples::default())))
        .collect();
    let mut kept: Vec<Option<Kept>> = columns.iter().map(|_| None).collect();
    // The slowest seconds per operation any column took in this cell: the bound's reference.
    let mut slowest: Option<f64> = None;
    let warm_up = (ops / 8).max(shape.tasks);
    for round in 0..=samples {
        let n = if round == 0 { warm_up } else { ops };
        for (i, column) in columns.iter_mut().enumerate() {
            let Some(Ok(samples)) = &mut figures[i] else {
                continue;
            };
            if let Some(gone) = column.lane.gone() {
                figures[i] = Some(Err(gone));
                continue;
            }
            let sampler = column.sampler;
            let pool = kept[i].take();
            let bound = limit(slowest, n, Duration::from_secs(1), Duration::from_secs(1));
            match column
                .lane
                .run(flavor, bound, move |rt| sampler(rt, pool, regime, shape, n))
            {
                Ok((pool, secs)) => {
                    kept[i] = pool;
                    slowest = Some(slowest.map_or(secs, |s| s.max(secs)));
                    if round > 0 {
                        samples.push(secs);
                    }
                }
                Err(gone) => {
                    println!(
                        "micro: {} {gone} ({} regime, {flavor} runtime, size {}, {} tasks{}; bound {bound:.1?}); every later cell of it reads \"{gone}\" without being measured\n",
                        column.lane.name,
                        regime.label(),
                        shape.size,
                        shape.tasks,
                        if shape.hold { ", yield" } else { "" },
                    );
                    figures[i] = Some(Err(gone));
                }
            }
        }
    }
    // Kept pools are dropped on their own runtime, where their background tasks live.
    for (column, pool) in columns.iter_mut().zip(kept) {
        if let Some(pool) = pool {
            let dropped = column.lane.run(flavor, Duration::from_secs(10), move |rt| {
                let _entered = rt.enter();
                drop(pool);
            });
            if let Err(gone) = dropped {
                eprintln!(
                    "micro: {} {gone} when its pool is dropped",
                    column.lane.name
                );
            }
        }
    }
    figures
}

/// The index of our default column, which the ratios compare against.
fn ours_column(columns: &[Column]) -> usize {
    columns
        .iter()
        .position(|c| c.kind == Kind::Ours)
        .expect("our column")
}

/// Mops/s of a figure, "median (min–max)", or why there is none.
fn mops(figure: &Figure) -> String {
    match figure {
        Ok(s) => {
            let mut inv = Samples::default();
            for &v in &s.raw() {
                inv.push(1.0 / v);
            }
            inv.cell(1e-6, 2)
        }
        Err(gone) => gone.to_string(),
    }
}

/// Throughput of ours over `peer`'s (their time per operation over ours), if both have one.
fn ratio(ours: &Figure, peer: &Figure) -> Option<f64> {
    match (ours, peer) {
        (Ok(o), Ok(p)) => Some(p.median() / o.median()),
        _ => None,
    }
}

/// The worst ratio of each peer over a group of rows, for the summary line: `Err` when the
/// peer hung or failed in one of them.
struct Worst {
    /// Per column: the smallest ratio of column `ours` over it so far.
    by_peer: Vec<Result<f64, Gone>>,
}

impl Worst {
    fn new(n: usize) -> Self {
        Worst {
            by_peer: vec![Ok(f64::INFINITY); n],
        }
    }

    fn add(&mut self, ours: &Figure, peer: usize, figure: &Figure) {
        let slot = &mut self.by_peer[peer];
        match (figure, &slot) {
            (Err(gone), _) => *slot = Err(*gone),
            (Ok(_), Ok(w)) => {
                if let Some(r) = ratio(ours, figure) {
                    *slot = Ok(w.min(r));
                }
            }
            (Ok(_), Err(_)) => {}
        }
    }

    /// "0.95x deadpool, 0.77x bb8, qp hangs".
    fn line(&self, columns: &[Column]) -> String {
        let mut parts = Vec::new();
        for (i, column) in columns.iter().enumerate() {
            if column.kind != Kind::Peer {
                continue;
            }
            match self.by_peer[i] {
                Ok(w) if w.is_finite() => parts.push(format!("{w:.2}x {}", column.lane.name)),
                Ok(_) => {}
                Err(gone) => parts.push(format!("{} {gone}", column.lane.name)),
            }
        }
        parts.join(", ")
    }
}

/// Runs the suite and prints its tables and summary line.
pub fn run(plan: &Plan) {
    let mut columns = columns();
    let mut summary = Vec::new();
    let regimes: &[Regime] = if plan.fresh_only {
        &[Regime::Fresh]
    } else {
        &[Regime::Fresh, Regime::Prefilled]
    };
    for &regime in regimes {
        for flavor in Flavor::ALL {
            let rows = measure_table(&mut columns, plan, regime, flavor);
            summary.push(print_table(&columns, plan, regime, flavor, &rows));
            print_floor(&columns, plan, regime, flavor, &rows);
        }
    }
    summary.push(uncontended(&mut columns, plan));
    println!("micro summary: {}", summary.join("; "));
}

/// Every row of one table.
fn measure_table(columns: &mut [Column], plan: &Plan, regime: Regime, flavor: Flavor) -> Vec<Row> {
    let mut rows = Vec::new();
    for hold in [false, true] {
        for &size in plan.sizes {
            for &tasks in plan.tasks {
                let shape = Shape { size, tasks, hold };
                let active: Vec<bool> = columns
                    .iter()
                    .map(|c| c.in_regime(regime) || (hold && c.kind == Kind::Floor))
                    .collect();
                let figures = measure(
                    columns,
                    &active,
                    flavor,
                    regime,
                    shape,
                    plan.ops,
                    plan.samples,
                );
                rows.push(Row { shape, figures });
            }
        }
    }
    rows
}

/// Prints the throughput table of one regime and flavor; returns its part of the summary.
fn print_table(
    columns: &[Column],
    plan: &Plan,
    regime: Regime,
    flavor: Flavor,
    rows: &[Row],
) -> String {
    let shown: Vec<usize> = (0..columns.len())
        .filter(|&i| columns[i].in_regime(regime))
        .collect();
    let ours = ours_column(columns);
    let peers: Vec<usize> = shown
        .iter()
        .copied()
        .filter(|&i| columns[i].kind == Kind::Peer)
        .collect();
    let header: Vec<String> = ["size", "tasks", "hold"]
        .into_iter()
        .map(String::from)
        .chain(
            shown
                .iter()
                .map(|&i| format!("{} (Mops/s)", columns[i].lane.name)),
        )
        .chain(
            peers
                .iter()
                .map(|&i| format!("vs {}", columns[i].lane.name)),
        )
        .collect();
    let mut worst = [Worst::new(columns.len()), Worst::new(columns.len())];
    let mut variant_worst = [Worst::new(columns.len()), Worst::new(columns.len())];
    let mut lines = Vec::new();
    for row in rows {
        let figure = |i: usize| row.figures[i].clone().unwrap_or(Err(Gone::Failed));
        let ours_figure = figure(ours);
        let mut cells = vec![
            row.shape.size.to_string(),
            row.shape.tasks.to_string(),
            if row.shape.hold { "yield" } else { "-" }.to_string(),
        ];
        cells.extend(shown.iter().map(|&i| mops(&figure(i))));
        for &i in &peers {
            let peer = figure(i);
            cells.push(match ratio(&ours_figure, &peer) {
                Some(r) => format!("{r:.2}x"),
                None => "-".to_string(),
            });
            worst[usize::from(row.shape.hold)].add(&ours_figure, i, &peer);
            for &v in &shown {
                if columns[v].kind == Kind::OursVariant {
                    variant_worst[usize::from(row.shape.hold)].add(&figure(v), i, &peer);
                }
            }
        }
        lines.push(cells);
    }
    println!(
        "### micro: {}, {flavor} runtime, {} per sample, median of {} (min–max), Mops/s\n",
        regime.heading(),
        ops_label(plan.ops),
        plan.samples
    );
    table(&header, &lines);
    if regime == Regime::Fresh {
        println!(
            "`{}` is ours with a manager that keeps the trait's default `needs_reset`, so a reset future runs on every checkout (as deadpool's `recycle` does); the ratios are the default column's.\n",
            columns
                .iter()
                .find(|c| c.kind == Kind::OursVariant)
                .map_or("", |c| c.lane.name)
        );
    }
    let group = |hold: usize| {
        let mut text = format!("worst {}", worst[hold].line(columns));
        if regime == Regime::Fresh {
            let _ = write!(
                text,
                " (reset per checkout: {})",
                variant_worst[hold].line(columns)
            );
        }
        text
    };
    format!(
        "{} {flavor} no-hold: {}, hold: {}",
        regime.label(),
        group(0),
        group(1)
    )
}

/// Prints, for the "yield" rows of one table, each pool's nanoseconds per operation above the
/// runtime floor.
fn print_floor(columns: &[Column], plan: &Plan, regime: Regime, flavor: Flavor, rows: &[Row]) {
    let Some(floor) = columns.iter().position(|c| c.kind == Kind::Floor) else {
        return;
    };
    let shown: Vec<usize> = (0..columns.len())
        .filter(|&i| columns[i].in_regime(regime))
        .collect();
    let header: Vec<String> = ["size", "tasks", "runtime floor (ns/op)"]
        .into_iter()
        .map(String::from)
        .chain(
            shown
                .iter()
                .map(|&i| format!("{} above floor", columns[i].lane.name)),
        )
        .collect();
    let mut lines = Vec::new();
    for row in rows.iter().filter(|r| r.shape.hold) {
        let floor_ns = match &row.figures[floor] {
            Some(Ok(s)) => s.median() * 1e9,
            _ => f64::NAN,
        };
        let mut cells = vec![
            row.shape.size.to_string(),
            row.shape.tasks.to_string(),
            match &row.figures[floor] {
                Some(Ok(s)) => s.cell(1e9, 1),
                Some(Err(gone)) => gone.to_string(),
                None => "-".to_string(),
            },
        ];
        cells.extend(shown.iter().map(|&i| match &row.figures[i] {
            Some(Ok(s)) => format!("{:.1}", s.median() * 1e9 - floor_ns),
            Some(Err(gone)) => gone.to_string(),
            None => "-".to_string(),
        }));
        lines.push(cells);
    }
    println!(
        "#### micro \"yield\" rows above the runtime floor: {}, {flavor} runtime, {} per sample, median of {}, ns/op\n",
        regime.heading(),
        ops_label(plan.ops),
        plan.samples
    );
    println!(
        "The floor is the same tasks looping the same `yield_now`s with no pool; a pool's figure is its median ns/op minus the floor's.\n"
    );
    table(&header, &lines);
}

/// Measures and prints one task alone on a pre-filled pool of 8, per flavor; returns its part
/// of the summary.
fn uncontended(columns: &mut [Column], plan: &Plan) -> String {
    let shape = Shape {
        size: 8,
        tasks: 1,
        hold: false,
    };
    let active: Vec<bool> = columns
        .iter()
        .map(|c| matches!(c.kind, Kind::Ours | Kind::Peer))
        .collect();
    let shown: Vec<usize> = (0..columns.len()).filter(|&i| active[i]).collect();
    let header: Vec<String> = std::iter::once("runtime".to_string())
        .chain(shown.iter().map(|&i| columns[i].lane.name.to_string()))
        .collect();
    let mut lines = Vec::new();
    let mut parts = Vec::new();
    for flavor in Flavor::ALL {
        let figures = measure(
            columns,
            &active,
            flavor,
            Regime::Prefilled,
            shape,
            plan.ops,
            plan.samples,
        );
        let figure = |i: usize| figures[i].clone().unwrap_or(Err(Gone::Failed));
        lines.push(
            std::iter::once(flavor.to_string())
                .chain(shown.iter().map(|&i| match figure(i) {
                    Ok(s) => s.cell(1e9, 1),
                    Err(gone) => gone.to_string(),
                }))
                .collect(),
        );
        let mut worst = Worst::new(columns.len());
        for &i in &shown {
            if columns[i].kind == Kind::Peer {
                worst.add(&figure(ours_column(columns)), i, &figure(i));
            }
        }
        parts.push(format!("{flavor} {}", worst.line(columns)));
    }
    println!(
        "### micro: uncontended acquire + release, one task, pre-filled pool of 8, {} per sample, median of {} (min–max), ns/op\n",
        ops_label(plan.ops),
        plan.samples
    );
    table(&header, &lines);
    format!("uncontended {}", parts.join(", "))
}
