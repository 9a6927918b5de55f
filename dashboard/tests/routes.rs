//! `/pools` and `/metrics` for a database's role pools against real servers: the primary, its
//! streaming replica and an admin pool, each shown with its role and the replica with whether
//! it is in rotation; the Prometheus text parses with a real parser.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use integration_tests::{server, Kind};
use pool_dashboard::Dashboard;
use pool_drivers::postgres::DatabaseConfig;
use tower::ServiceExt;

async fn get(router: &Router, path: &str) -> (StatusCode, String, String) {
    let response = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let kind = response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, kind, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn role_pools_are_shown_with_their_roles_and_replica_health() {
    let Some(primary) = server(Kind::Postgres).await else {
        return;
    };
    let Some(replica) = server(Kind::PostgresReplica).await else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        let config =
            DatabaseConfig::from_urls(primary.url(), &[replica.url()], Some(primary.url()))
                .unwrap();
        let pools = config.build_pools_lazy().unwrap();
        // One read served by the replica, one write held while the pages are read.
        drop(pools.read().await.unwrap());
        let _write = pools.write().await.unwrap();
        let router = Dashboard::new().database_pools(&pools).router();

        let (status, kind, body) = get(&router, "/pools").await;
        assert_eq!(
            (status, kind.as_str()),
            (StatusCode::OK, "application/json")
        );
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        let shown = json["pools"].as_array().unwrap();
        let roles: Vec<&str> = shown.iter().map(|p| p["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["write", "replica 0", "admin"]);
        assert_eq!(shown[0]["in_rotation"], serde_json::Value::Null);
        assert_eq!(shown[1]["in_rotation"], true);
        assert_eq!(shown[0]["snapshot"]["status"]["in_use"], 1);
        assert_eq!(
            shown[1]["snapshot"]["stats"]["acquires_direct"]
                .as_u64()
                .unwrap()
                + shown[1]["snapshot"]["stats"]["acquires_waited"]
                    .as_u64()
                    .unwrap(),
            1
        );
        let names: Vec<&str> = shown
            .iter()
            .map(|p| p["snapshot"]["name"].as_str().unwrap())
            .collect();
        assert!(names[2].ends_with("(admin)"), "{names:?}");
        assert_ne!(
            names[0], names[1],
            "the replica is named after its own server"
        );
        let history = shown[0]["history"].as_array().unwrap();
        assert_eq!(
            history.last().unwrap()[3],
            1,
            "in use, as the snapshot says"
        );

        let (status, kind, text) = get(&router, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(kind.starts_with("text/plain"), "{kind}");
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
        let used = scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "db_client_connection_count"
                    && s.labels.get("db_client_connection_pool_name") == Some(names[0])
                    && s.labels.get("db_client_connection_state") == Some("used")
            })
            .expect("the write pool's used count");
        assert_eq!(used.value, prometheus_parse::Value::Gauge(1.0));

        let (status, kind, page) = get(&router, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(kind.starts_with("text/html"), "{kind}");
        assert!(page.contains("uPlot"));
    })
    .await
    .expect("the test finishes within a minute");
}
