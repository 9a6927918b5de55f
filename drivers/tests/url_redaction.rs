//! Mutated connection URLs fed to every driver's URL parser: none may panic, and no password may
//! reach what a program prints about a configuration: `Debug` of the `Config`, the `Manager` and
//! the `Pool`, `Display`, `{:#}` and `Debug` of every error and of each error in its chain, and
//! what the parsers log through `tracing` while they read the URL.
//!
//! Generated passwords hold `#`, `/`, `?` and `@`, and URLs are written by hand, so the inputs
//! that matter are the malformed ones: a parser that splits a URL elsewhere than its author
//! meant must still not print the secret. Each case starts from a valid URL of the driver with a
//! distinctive password and applies one to four random edits (insert, delete or duplicate
//! characters, a doubled scheme, a dropped `//`, swapped segments, one delimiter turned into
//! another, a password (again) in a query parameter, a truncation).
//!
//! What counts as the password is decided by position alone, as the drivers' redaction does:
//! what follows the first `:` of the user information (everything between `scheme://` and the
//! last `@`), all of the user information when the URL has no scheme or its user name holds a
//! `/`, `?`, `#` or `@` (a sign that the URL was cut elsewhere than meant), and the value of a
//! query parameter whose name says password (`password`, `pass`, `pwd`, in any case; the whole
//! parameter when it has no `=`). An edit can move the secret somewhere else: a dropped `:`
//! makes it part of the user name, a swap can make it a host. Such a case is only checked when
//! the secret is nowhere but in a password position, since a user name or a host is printed on
//! purpose.
//!
//! The run is deterministic: it prints its seed, and `URL_FUZZ_SEED=<seed>` replays or explores
//! (`URL_FUZZ_CASES=<n>` sets how many URLs each driver gets, `URL_FUZZ_SHOW=<n>` how many leaks
//! are printed). No connection is ever opened: `build_pool_lazy` is lazy.

#![allow(missing_docs)]

use std::error::Error as StdError;
use std::fmt::{Debug, Write as _};
use std::ops::Range;
use std::sync::{Arc, Mutex};

#[allow(unused_imports)] // Not every feature set uses it.
use pool_drivers::DriverConfig;

/// The default seed, so CI runs the same cases every time; set `URL_FUZZ_SEED` to explore.
const DEFAULT_SEED: u64 = 0x5EC2_E7ED_0A11;
/// URLs per driver by default: about a second for all drivers in a debug build.
const DEFAULT_CASES: usize = 5000;

/// Passwords as written in a URL. Each holds `SECRET` (or its percent-encoding), which is what
/// a leak is searched for, so a printed piece of a password cut at a `#`, `/`, `?`, `@` or `:`
/// is found too.
const SECRETS: &[&str] = &[
    "Zq9-SECRET-x7",
    "Zq9#SECRET-x7",
    "Zq9/SECRET?x7",
    "Zq9@SECRET:x7",
    "Zq9%40SECRET%2Fx7",
    "Zq9%23SECRET%3Fx7%3A",
    "Zq9%3ASECRET%25x7",
    "%53%45%43%52%45%54", // "SECRET", every byte percent-encoded
];

/// Whether `text` shows the secret, in any case, raw or percent-decoded.
fn shows_secret(text: &str) -> bool {
    let lower = text.to_lowercase();
    lower.contains("secret")
        || lower.contains("%53%45%43%52%45%54")
        || percent_decode(&lower).to_lowercase().contains("secret")
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Where a password sits in `url`, by position (see the module's documentation). Written
/// independently of the drivers' redaction, as the specification it must meet.
fn password_spans(url: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let scheme_end = url
        .find(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
        .filter(|&i| i > 0 && url[i..].starts_with(':') && url.as_bytes()[0].is_ascii_alphabetic());
    let start = scheme_end.map_or(0, |i| {
        i + 1 + url[i + 1..].bytes().take_while(|&b| b == b'/').count()
    });
    if let Some(at) = url[start..].rfind('@').map(|i| start + i) {
        let colon = url[start..at].find(':').map(|i| start + i);
        let user = &url[start..colon.unwrap_or(at)];
        if scheme_end.is_none() || user.contains(['/', '?', '#', '@']) {
            spans.push(start..at);
        } else if let Some(colon) = colon {
            spans.push(colon + 1..at);
        }
    }
    for (i, c) in url.char_indices() {
        if c != '?' && c != '&' {
            continue;
        }
        let end = url[i + 1..].find('&').map_or(url.len(), |j| i + 1 + j);
        let param = &url[i + 1..end];
        let (key, value) = match param.find('=') {
            Some(eq) => (&param[..eq], i + 1 + eq + 1),
            None => (param, i + 1),
        };
        let key = percent_decode(key).to_lowercase();
        if key.contains("pass") || key.contains("pwd") {
            spans.push(value..end);
        }
    }
    spans
}

/// What one driver is fed: its valid URL templates (`PW` stands for the password), schemes to
/// double up, and whether the input is a comma-separated list of URLs.
struct Driver {
    name: &'static str,
    templates: &'static [&'static str],
    /// How many of the templates, from the first, are valid URLs of the driver: with a
    /// password that needs no escaping (or is percent-encoded) they must still be accepted.
    valid: usize,
    schemes: &'static [&'static str],
    list: bool,
}

/// A printed password: which driver, which URL, which output, and the text.
struct Leak {
    driver: &'static str,
    url: String,
    channel: &'static str,
    text: String,
}

/// Per driver: URLs tried, URLs `from_url` accepted, URLs checked (the secret only in a
/// password position), URLs with a leak, and per channel the URLs that leaked through it.
struct Totals {
    name: &'static str,
    tried: usize,
    accepted: usize,
    checked: usize,
    leaky: usize,
    channels: Vec<(&'static str, usize)>,
    took: std::time::Duration,
}

struct Run {
    seed: u64,
    cases: usize,
    leaks: Vec<Leak>,
    totals: Vec<Totals>,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Run {
    fn new(logs: Arc<Mutex<Vec<String>>>) -> Self {
        let seed = std::env::var("URL_FUZZ_SEED")
            .ok()
            .map(|s| {
                let s = s.trim();
                s.strip_prefix("0x")
                    .map_or_else(|| s.parse(), |hex| u64::from_str_radix(hex, 16))
                    .expect("URL_FUZZ_SEED must be a number")
            })
            .unwrap_or(DEFAULT_SEED);
        let cases = std::env::var("URL_FUZZ_CASES")
            .ok()
            .map(|s| s.trim().parse().expect("URL_FUZZ_CASES must be a number"))
            .unwrap_or(DEFAULT_CASES);
        println!(
            "url fuzz: seed {seed:#x} (replay with URL_FUZZ_SEED={seed:#x}), {cases} URLs per driver"
        );
        Run {
            seed,
            cases,
            leaks: Vec::new(),
            totals: Vec::new(),
            logs,
        }
    }

    /// Feeds `driver` its mutated URLs; `probe` parses one and returns whether `from_url`
    /// accepted it and every text printed about it, by channel.
    fn driver(
        &mut self,
        driver: &Driver,
        mut probe: impl FnMut(&str) -> (bool, Vec<(&'static str, String)>),
    ) {
        let mut totals = Totals {
            name: driver.name,
            tried: self.cases,
            accepted: 0,
            checked: 0,
            leaky: 0,
            channels: Vec::new(),
            took: std::time::Duration::ZERO,
        };
        let started = std::time::Instant::now();
        // The refusals that keep a malformed URL from being misread must not reach a valid one,
        // and a valid one must not show its password either.
        let plain = SECRETS.iter().filter(|s| !s.contains(['#', '/', '?', '@']));
        for (template, secret) in driver.templates[..driver.valid]
            .iter()
            .flat_map(|t| plain.clone().map(move |s| (t, s)))
        {
            let url = template.replace("PW", secret);
            let (ok, outputs) = probe(&url);
            let shown: Vec<_> = outputs.iter().filter(|(_, t)| shows_secret(t)).collect();
            assert!(
                ok,
                "{}: the valid URL {url:?} was refused: {outputs:?}",
                driver.name
            );
            assert!(
                shown.is_empty(),
                "{}: {url:?} printed: {shown:?}",
                driver.name
            );
        }
        // Each driver gets its own stream, so adding a driver does not change another's cases.
        let mut rng = fastrand::Rng::with_seed(self.seed ^ fnv(driver.name));
        for _ in 0..self.cases {
            let secret = SECRETS[rng.usize(..SECRETS.len())];
            let template = driver.templates[rng.usize(..driver.templates.len())];
            let url = mutate(&mut rng, &template.replace("PW", secret), secret, driver);
            self.logs.lock().unwrap().clear();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| probe(&url)));
            let Ok((ok, mut outputs)) = outcome else {
                panic!(
                    "{}: parsing {url:?} panicked (seed {:#x})",
                    driver.name, self.seed
                );
            };
            outputs.extend(
                self.logs
                    .lock()
                    .unwrap()
                    .drain(..)
                    .map(|line| ("a tracing event", line)),
            );
            totals.accepted += usize::from(ok);
            if !secret_only_in_password_positions(&url, driver.list) {
                continue;
            }
            totals.checked += 1;
            let mut channels: Vec<&'static str> = Vec::new();
            for (channel, text) in outputs {
                if shows_secret(&text) {
                    if !channels.contains(&channel) {
                        channels.push(channel);
                    }
                    self.leaks.push(Leak {
                        driver: driver.name,
                        url: url.clone(),
                        channel,
                        text,
                    });
                }
            }
            totals.leaky += usize::from(!channels.is_empty());
            for channel in channels {
                match totals.channels.iter_mut().find(|(c, _)| *c == channel) {
                    Some((_, n)) => *n += 1,
                    None => totals.channels.push((channel, 1)),
                }
            }
        }
        totals.took = started.elapsed();
        self.totals.push(totals);
    }

    fn finish(self) {
        for t in &self.totals {
            println!(
                "url fuzz: {}: {} URLs in {:.1?}, {} accepted by from_url, {} with the secret only where a password goes, {} printed it",
                t.name, t.tried, t.took, t.accepted, t.checked, t.leaky
            );
            for (channel, n) in &t.channels {
                println!("url fuzz: {}:     {n} through {channel}", t.name);
            }
        }
        if self.leaks.is_empty() {
            return;
        }
        let shown = std::env::var("URL_FUZZ_SHOW")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20);
        let mut last_url = None;
        for leak in self.leaks.iter().take(shown) {
            if last_url != Some(&leak.url) {
                println!("url fuzz: {} {:?}", leak.driver, leak.url);
                last_url = Some(&leak.url);
            }
            println!("    {}: {}", leak.channel, leak.text);
        }
        panic!(
            "{} URLs had their password printed (seed {:#x}; replay with URL_FUZZ_SEED={:#x})",
            self.totals.iter().map(|t| t.leaky).sum::<usize>(),
            self.seed,
            self.seed
        );
    }
}

/// Whether the secret is in `url` and only where a password goes (for a list, in any of its
/// comma-separated URLs).
fn secret_only_in_password_positions(url: &str, list: bool) -> bool {
    let mut inside = String::new();
    let mut outside = String::new();
    let parts: Vec<&str> = if list {
        url.split(',').collect()
    } else {
        vec![url]
    };
    for part in parts {
        let mut last = 0;
        let mut spans = password_spans(part);
        spans.sort_by_key(|r| r.start);
        for span in spans {
            if span.start > last {
                outside.push_str(&part[last..span.start]);
            }
            outside.push(' ');
            inside.push_str(&part[span.start.max(last)..span.end.max(last)]);
            inside.push(' ');
            last = last.max(span.end);
        }
        outside.push_str(&part[last..]);
        outside.push(' ');
    }
    // URL parsers drop tabs and newlines wherever they are (the WHATWG standard says so).
    let joined = |s: String| s.replace(['\t', '\n', '\r'], "");
    shows_secret(&joined(inside)) && !shows_secret(&joined(outside))
}

/// A stable hash of a driver's name, to give each driver its own random stream.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Characters that move a URL parser from one part to the next, and some that only look odd.
const DELIMITERS: &[char] = &[
    '@', '#', '?', '/', ':', '%', '=', '&', ',', '[', ']', '\\', ' ', '+', ';',
];
const OTHERS: &[char] = &['a', 'Z', '0', '9', '-', '.', '_', '~', 'é', '\u{0}', '\n'];
/// Query parameters that carry a password in one driver or another, in several spellings.
const PASSWORD_KEYS: &[&str] = &[
    "password", "pass", "pwd", "PASSWORD", "Pass", "PwD", "passwd",
];

/// One to four random edits of `url`.
fn mutate(rng: &mut fastrand::Rng, url: &str, secret: &str, driver: &Driver) -> String {
    let mut s: Vec<char> = url.chars().collect();
    for _ in 0..rng.usize(1..=4) {
        let len = s.len();
        let at = rng.usize(..=len);
        match rng.u8(..12) {
            0 | 1 => s.insert(at, DELIMITERS[rng.usize(..DELIMITERS.len())]),
            2 => s.insert(at, OTHERS[rng.usize(..OTHERS.len())]),
            3 if len > 0 => {
                s.remove(rng.usize(..len));
            }
            4 if len > 0 => {
                let start = rng.usize(..len);
                let end = (start + rng.usize(1..8)).min(len);
                s.drain(start..end);
            }
            5 if len > 0 => {
                let start = rng.usize(..len);
                let end = (start + rng.usize(1..12)).min(len);
                let piece: Vec<char> = s[start..end].to_vec();
                s.splice(end..end, piece);
            }
            6 => {
                // A doubled scheme: the same one, another driver's, or a half-written one.
                let scheme = driver.schemes[rng.usize(..driver.schemes.len())];
                let prefix = match rng.u8(..4) {
                    0 => format!("{scheme}://"),
                    1 => format!("{scheme}:"),
                    2 => format!("{scheme}:/"),
                    _ => format!("{}{scheme}://", &scheme[..1]),
                };
                s.splice(0..0, prefix.chars());
            }
            7 => {
                // A dropped `//` or `:` after the scheme, or one slash too few.
                let text: String = s.iter().collect();
                let text = match rng.u8(..3) {
                    0 => text.replacen("//", "", 1),
                    1 => text.replacen("://", "//", 1),
                    _ => text.replacen("//", "/", 1),
                };
                s = text.chars().collect();
            }
            8 => swap_segments(rng, &mut s),
            9 => {
                // One delimiter becomes another.
                let positions: Vec<usize> =
                    (0..len).filter(|&i| DELIMITERS.contains(&s[i])).collect();
                if !positions.is_empty() {
                    let i = positions[rng.usize(..positions.len())];
                    s[i] = DELIMITERS[rng.usize(..DELIMITERS.len())];
                }
            }
            10 => {
                // The password (again) in a query parameter.
                let key = PASSWORD_KEYS[rng.usize(..PASSWORD_KEYS.len())];
                let sep = if s.contains(&'?') { '&' } else { '?' };
                s.extend(format!("{sep}{key}={secret}").chars());
            }
            _ if len > 0 => s.truncate(rng.usize(len / 2..=len)),
            _ => {}
        }
    }
    s.into_iter().collect()
}

/// Swaps two of the pieces the URL's delimiters cut it into.
fn swap_segments(rng: &mut fastrand::Rng, s: &mut Vec<char>) {
    let mut pieces: Vec<Vec<char>> = vec![Vec::new()];
    for &c in s.iter() {
        if "@/?#:&=".contains(c) {
            pieces.push(vec![c]);
        } else {
            pieces.last_mut().expect("never empty").push(c);
        }
    }
    if pieces.len() < 2 {
        return;
    }
    let a = rng.usize(..pieces.len());
    let b = rng.usize(..pieces.len());
    pieces.swap(a, b);
    *s = pieces.concat();
}

/// Everything an error prints: `Display`, `{:#}` and `Debug`, and the same for each error in
/// its chain (as `anyhow` or a logger that walks `source()` prints them).
fn error_texts(
    channel: &'static str,
    error: &(dyn StdError + 'static),
    out: &mut Vec<(&'static str, String)>,
) {
    out.push((channel, format!("{error}")));
    out.push((channel, format!("{error:#}")));
    out.push((channel, format!("{error:?}")));
    let mut source = error.source();
    while let Some(e) = source {
        out.push((channel, format!("{e} / {e:#} / {e:?}")));
        source = e.source();
    }
}

/// `Debug` of a value (`{:#?}` shows the same strings, only laid out differently).
fn debug_text(channel: &'static str, value: &impl Debug, out: &mut Vec<(&'static str, String)>) {
    out.push((channel, format!("{value:?}")));
}

/// The common shape of a probe: `from_url`; on success `Debug` of the config, `manager()` and
/// `build_pool_lazy()`; on failure the error, and the error `build_pool` wraps it in.
fn probe<C: Debug, M: Debug, P: Debug, E: StdError + 'static>(
    url: &str,
    from_url: impl Fn(&str) -> Result<C, pool_drivers::InvalidConfig>,
    manager: impl Fn(&C) -> Result<M, pool_drivers::InvalidConfig>,
    build_pool_lazy: impl Fn(&C) -> Result<P, pool_drivers::InvalidConfig>,
    wrap: impl Fn(pool_drivers::InvalidConfig) -> E,
) -> (bool, Vec<(&'static str, String)>) {
    let mut out = Vec::new();
    let config = match from_url(url) {
        Ok(config) => config,
        Err(e) => {
            error_texts("the from_url error", &e, &mut out);
            error_texts("the build_pool error wrapping it", &wrap(e), &mut out);
            return (false, out);
        }
    };
    debug_text("Debug of the Config", &config, &mut out);
    match manager(&config) {
        Ok(m) => debug_text("Debug of the Manager", &m, &mut out),
        Err(e) => error_texts("the manager() error", &e, &mut out),
    }
    match build_pool_lazy(&config) {
        Ok(p) => debug_text("Debug of the Pool", &p, &mut out),
        Err(e) => error_texts("the build_pool_lazy() error", &e, &mut out),
    }
    (true, out)
}

/// A `tracing` subscriber that keeps every event and span field as text, to find a parser
/// that logs what it read (sqlx logs unknown PostgreSQL parameters with their values).
struct Capture(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = Fields(String::new());
        span.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut fields = Fields(String::new());
        values.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(format!("{}: ", event.metadata().target()));
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn mutated_urls_never_print_the_password() {
    // build_pool_lazy is lazy, but a pool spawns its upkeep task, which needs a runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let _runtime = runtime.enter();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let _subscriber = tracing::subscriber::set_default(Capture(Arc::clone(&logs)));
    let started = std::time::Instant::now();
    let mut run = Run::new(logs);

    #[cfg(feature = "postgres")]
    {
        use pool_drivers::postgres::{Config, Error};
        run.driver(
            &Driver {
                name: "postgres",
                templates: &[
                    "postgres://app:PW@db.example.com:5432/orders?application_name=api",
                    "postgresql://app:PW@127.0.0.1/app",
                    "postgres://app:PW@[::1]:5433,db2:5432/app?target_session_attrs=read-write",
                    "postgres://app@127.0.0.1/app?password=PW&sslmode=disable",
                ],
                valid: 4,
                schemes: &["postgres", "postgresql", "mysql"],
                list: false,
            },
            |url| {
                probe(
                    url,
                    Config::from_url,
                    Config::manager,
                    Config::build_pool_lazy,
                    pool_drivers::BuildPoolError::<Error>::Config,
                )
            },
        );
    }

    #[cfg(feature = "mysql")]
    {
        use pool_drivers::mysql::{Config, Error};
        run.driver(
            &Driver {
                name: "mysql",
                templates: &[
                    "mysql://app:PW@127.0.0.1:3306/app",
                    "mysql://app:PW@db.example.com/app?prefer_socket=false&stmt_cache_size=64",
                    "mysql://app:PW@[::1]:3306/app",
                    "mysql://:PW@127.0.0.1/test",
                ],
                valid: 4,
                schemes: &["mysql", "mariadb", "redis"],
                list: false,
            },
            |url| {
                probe(
                    url,
                    Config::from_url,
                    Config::manager,
                    Config::build_pool_lazy,
                    pool_drivers::BuildPoolError::<Error>::Config,
                )
            },
        );
    }

    #[cfg(feature = "redis")]
    {
        use pool_drivers::redis::{Config, Error};
        run.driver(
            &Driver {
                name: "redis",
                templates: &[
                    "redis://:PW@127.0.0.1:6379/2",
                    "redis://app:PW@cache.example.com:6379/0?protocol=resp3",
                    "redis+unix:///tmp/redis.sock?db=1&user=app&pass=PW",
                    "valkey://app:PW@[::1]:6379",
                    // Refused (no TLS in this build), but only after the URL was read.
                    "rediss://app:PW@cache.example.com:6380/1",
                ],
                valid: 4,
                schemes: &["redis", "rediss", "unix", "redis+unix"],
                list: false,
            },
            |url| {
                probe(
                    url,
                    Config::from_url,
                    Config::manager,
                    Config::build_pool_lazy,
                    pool_drivers::BuildPoolError::<Error>::Config,
                )
            },
        );
    }

    #[cfg(feature = "redis-cluster")]
    {
        use pool_drivers::redis::cluster::Config;
        use pool_drivers::redis::Error;
        run.driver(
            &Driver {
                name: "redis-cluster",
                templates: &[
                    "redis://:PW@127.0.0.1:7000,redis://:PW@127.0.0.1:7001",
                    "redis://app:PW@node1.example.com:7000",
                    "rediss://app:PW@node1:7000, rediss://app:PW@node2:7000",
                ],
                valid: 2,
                schemes: &["redis", "rediss"],
                list: true,
            },
            |url| {
                probe(
                    url,
                    Config::from_url,
                    Config::manager,
                    Config::build_pool_lazy,
                    pool_drivers::BuildPoolError::<Error>::Config,
                )
            },
        );
    }

    #[cfg(feature = "tcp")]
    {
        use pool_drivers::tcp::{Config, Error};
        run.driver(
            &Driver {
                name: "tcp",
                // A TCP URL has no password, so these are refused; the refusal must not repeat
                // what was written where a password goes.
                templates: &[
                    "tcp://app:PW@127.0.0.1:7000",
                    "tcp://127.0.0.1:7000?connect_timeout=2s&password=PW",
                    "tcp://[::1]:7000/?keepalive=60s&pass=PW",
                ],
                valid: 0,
                schemes: &["tcp", "http"],
                list: false,
            },
            |url| {
                probe(
                    url,
                    Config::from_url,
                    Config::manager,
                    Config::build_pool_lazy,
                    pool_drivers::BuildPoolError::<Error>::Config,
                )
            },
        );
    }

    #[cfg(feature = "sqlx-postgres")]
    {
        use pool_drivers::sqlx::postgres::Config;
        run.driver(
            &Driver {
                name: "sqlx-postgres",
                templates: &[
                    "postgres://app:PW@db.example.com:5432/orders?application_name=api",
                    "postgresql://app:PW@127.0.0.1/app?sslmode=disable",
                    "postgres://app@127.0.0.1/app?password=PW",
                ],
                valid: 3,
                schemes: &["postgres", "postgresql", "mysql"],
                list: false,
            },
            |url| {
                probe(
                    url,
                    Config::from_url,
                    Config::manager,
                    Config::build_pool_lazy,
                    pool_drivers::BuildPoolError::<pool_drivers::sqlx::sqlx::Error>::Config,
                )
            },
        );
    }

    #[cfg(feature = "sqlx-mysql")]
    {
        use pool_drivers::sqlx::mysql::Config;
        run.driver(
            &Driver {
                name: "sqlx-mysql",
                templates: &[
                    "mysql://app:PW@127.0.0.1:3306/app",
                    "mariadb://app:PW@db.example.com/app?ssl-mode=disabled",
                    "mysql://app:PW@[::1]/app?charset=utf8mb4",
                ],
                valid: 3,
                schemes: &["mysql", "mariadb", "postgres"],
                list: false,
            },
            |url| {
                probe(
                    url,
                    Config::from_url,
                    Config::manager,
                    Config::build_pool_lazy,
                    pool_drivers::BuildPoolError::<pool_drivers::sqlx::sqlx::Error>::Config,
                )
            },
        );
    }

    #[cfg(feature = "sqlx-sqlite")]
    {
        use pool_drivers::sqlx::sqlite::Config;
        run.driver(
            &Driver {
                name: "sqlx-sqlite",
                // SQLite has no password; a URL that carries one anyway must not print it.
                templates: &[
                    "sqlite://app:PW@localhost/tmp/app.db",
                    "sqlite:///tmp/app.db?mode=ro&password=PW",
                ],
                valid: 1,
                schemes: &["sqlite", "postgres"],
                list: false,
            },
            |url| {
                probe(
                    url,
                    Config::from_url,
                    Config::manager,
                    Config::build_pool_lazy,
                    pool_drivers::BuildPoolError::<pool_drivers::sqlx::sqlx::Error>::Config,
                )
            },
        );
    }

    println!("url fuzz: took {:.1?}", started.elapsed());
    run.finish();
}
