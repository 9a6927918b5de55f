//! The dashboard in a real browser: headless Chromium (Debian's `chromium`, which `.ci/run`
//! installs) loads the page served for a real PostgreSQL pool, and what the page shows must
//! be what `/pools` says. A screenshot is saved under the target directory.
//!
//! Without Chromium the test is skipped loudly, unless `CI` is set: then it fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use integration_tests::{server, skip, unique_name, Kind};
use pool_dashboard::Dashboard;
use pool_drivers::postgres::Config;
use pool_drivers::DriverConfig;
use tower::ServiceExt;

/// The browser: `CHROMIUM` if set, else `chromium` on the `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Runs headless Chromium on `url` with `args`, bounded in time; returns its standard output.
async fn run_chromium(browser: &Path, profile: &Path, url: &str, args: &[&str]) -> String {
    let child = tokio::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1280,760",
            // Time for the page's first refresh to fetch `/pools` and draw.
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("chromium starts");
    let output = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("chromium finishes within 90 s")
        .expect("chromium's output");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("the DOM is UTF-8")
}

/// The text of the element with this `id` in `dom`.
fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let open = format!("id=\"{id}\"");
    let start = dom
        .find(&open)
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let from = start + dom[start..].find('>').expect("the tag ends") + 1;
    &dom[from..from + dom[from..].find('<').expect("the text ends")]
}

/// The value of attribute `name` of the element with this `id` in `dom`.
fn attribute_of<'a>(dom: &'a str, id: &str, name: &str) -> &'a str {
    let start = dom.find(&format!("id=\"{id}\"")).expect("the element");
    let tag = &dom[dom[..start].rfind('<').unwrap()..start + dom[start..].find('>').unwrap()];
    let key = format!("{name}=\"");
    let from = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} on #{id}: {tag}"))
        + key.len();
    &tag[from..from + tag[from..].find('"').unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_what_pools_says() {
    let Some(browser) = chromium() else {
        let missing = "no chromium on the PATH (apt-get install chromium; .ci/run installs it)";
        if std::env::var_os("CI").is_some() {
            panic!("{missing}; CI is set, so this is a failure");
        }
        skip(missing);
        return;
    };
    let Some(server) = server(Kind::Postgres).await else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(240), check_page(&browser, server.url()))
        .await
        .expect("the browser test finishes within 4 minutes");
}

async fn check_page(browser: &Path, url: &str) {
    let app = unique_name("dashboard");
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut config = Config::from_url(&format!("{url}{sep}application_name={app}")).unwrap();
    config.pool.max_size = 2;
    config.pool.leak_threshold = Some(Duration::from_millis(50));
    let pool = config.build_pool_lazy().unwrap();

    // Both connections held (past the leak threshold), and one caller waiting.
    let held = [pool.get().await.unwrap(), pool.get().await.unwrap()];
    for conn in &held {
        conn.query_one("SELECT 1", &[]).await.unwrap();
    }
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get_timeout(Duration::from_secs(200)).await.map(drop) }
    });
    while pool.status().waiting == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    let router = Dashboard::new().pool(&pool).router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let serving = tokio::spawn({
        let router = router.clone();
        async move { axum::serve(listener, router).await }
    });
    let profile = std::env::temp_dir().join(format!("{app}-chromium"));
    let page = format!("http://{address}/");

    let dom = run_chromium(browser, &profile, &page, &["--dump-dom"]).await;
    let response = router
        .oneshot(Request::get("/pools").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let pools: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let shown = &pools["pools"][0];
    let status = &shown["snapshot"]["status"];
    let latest = shown["history"].as_array().unwrap().last().unwrap();

    // The pool stood still, so the page and `/pools` saw the same counts.
    assert_eq!(
        (status["in_use"].as_u64(), status["waiting"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(text_of(&dom, "pool-0-in_use"), status["in_use"].to_string());
    assert_eq!(
        text_of(&dom, "pool-0-waiting"),
        status["waiting"].to_string()
    );
    assert_eq!(text_of(&dom, "pool-0-size"), status["size"].to_string());
    assert_eq!(
        text_of(&dom, "pool-0-name"),
        shown["snapshot"]["name"].as_str().unwrap()
    );
    assert_eq!(text_of(&dom, "pool-0-health"), "healthy");
    // The chart's latest point: [time, size, idle, in use, waiting].
    let chart = "pool-0-chart";
    assert_eq!(
        attribute_of(&dom, chart, "data-latest-in-use"),
        latest[3].to_string()
    );
    assert_eq!(
        attribute_of(&dom, chart, "data-latest-waiting"),
        latest[4].to_string()
    );
    assert_eq!(latest[3], status["in_use"]);
    // Both held connections are leaks, listed with where they were checked out.
    let leaks = shown["snapshot"]["leaks"].as_array().unwrap();
    assert_eq!(leaks.len(), 2);
    let site = leaks[0]["checked_out_at"].as_str().unwrap();
    assert!(site.starts_with("dashboard/tests/browser.rs:"), "{site}");
    assert!(dom.contains(site), "the page lists the leak at {site}");
    assert!(dom.contains("class=\"u-wrap\""), "uPlot drew the chart");

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let shot = format!("--screenshot={}", screenshot.display());
    run_chromium(browser, &profile, &page, &[&shot]).await;
    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    eprintln!("dashboard screenshot: {}", screenshot.display());

    drop(held);
    waiter.await.unwrap().unwrap();
    serving.abort();
    let _ = std::fs::remove_dir_all(&profile);
}
