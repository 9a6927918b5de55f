//! Following a promotion: a throw-away primary and its standby (initdb, pg_basebackup -R) on
//! free loopback ports, a pool over both hosts with `target_session_attrs=read-write`, writers
//! running while the primary is stopped and the standby promoted, and the old primary brought
//! back fenced (read-only), as a rejoining node would be. Writes go to the new primary, none
//! reaches the old one, and the callers' error window is measured. Then the new primary is
//! fenced while the pool's sessions idle: none is handed out, until it is writable again.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::failover::{error_window, Writers};
use integration_tests::invariants::eventually;
use integration_tests::{skip, unique_name};
use pool_drivers::postgres::tokio_postgres::{self, NoTls};
use pool_drivers::postgres::Config;
use pool_drivers::DriverConfig;

/// The PostgreSQL programs (`initdb`, `pg_ctl`, `pg_basebackup`) of the newest version
/// installed, if any.
fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    dirs.sort_by_key(|bin| {
        bin.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
    });
    dirs.pop()
}

/// Runs `program` with `args`, as the `postgres` user when this process is root (initdb and
/// the server refuse to run as root).
fn run_as_owner(bin: &Path, program: &str, args: &[&str]) {
    let output = owner_command(&bin.join(program))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `program`, to be run as the `postgres` user when this process is root.
fn owner_command(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The two clusters: stopped, and their directory removed, when dropped.
struct Clusters {
    bin: PathBuf,
    dir: PathBuf,
}

impl Clusters {
    fn data(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn start(&self, name: &str, port: u16, extra: &str) {
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} {extra}",
            self.dir.display()
        );
        let log = self.dir.join(format!("{name}.log")).display().to_string();
        let data = self.data(name);
        run_as_owner(
            &self.bin,
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        );
    }

    fn stop(&self, name: &str) {
        let data = self.data(name);
        run_as_owner(
            &self.bin,
            "pg_ctl",
            &["-D", &data, "-m", "fast", "-w", "stop"],
        );
    }
}

impl Drop for Clusters {
    fn drop(&mut self) {
        for name in ["old", "new"] {
            let data = self.data(name);
            if Path::new(&data).join("postmaster.pid").exists() {
                let _ = owner_command(&self.bin.join("pg_ctl"))
                    .args(["-D", &data, "-m", "immediate", "-w", "stop"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn connect(port: u16) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
        NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_pool_follows_a_promotion_and_never_writes_to_the_old_primary() {
    let Some(bin) = bin_dir() else {
        let why = "PostgreSQL's server programs (initdb, pg_ctl) are not installed";
        assert!(std::env::var_os("CI").is_none(), "{why}");
        skip(why);
        return;
    };
    let dir = std::env::temp_dir().join(unique_name("promotion"));
    std::fs::create_dir_all(&dir).unwrap();
    if is_root() {
        let status = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "cannot give {} to postgres",
            dir.display()
        );
    }
    let clusters = Clusters {
        bin: bin.clone(),
        dir: dir.clone(),
    };
    let (old, new) = (free_port(), free_port());
    let old_data = clusters.data("old");
    run_as_owner(
        &bin,
        "initdb",
        &["-D", &old_data, "-U", "postgres", "--auth=trust", "-N"],
    );
    clusters.start("old", old, "");
    let new_data = clusters.data("new");
    let old_port = old.to_string();
    run_as_owner(
        &bin,
        "pg_basebackup",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &old_port,
            "-U",
            "postgres",
            "-D",
            &new_data,
            "-R",
            "-X",
            "stream",
        ],
    );
    clusters.start("new", new, "");

    let test = async {
        connect(old)
            .await
            .batch_execute("CREATE TABLE writes (id INT PRIMARY KEY, port INT)")
            .await
            .unwrap();

        let mut config = Config::from_url(&format!(
            "postgres://postgres@127.0.0.1:{old},127.0.0.1:{new}/postgres?target_session_attrs=read-write"
        ))
        .unwrap();
        config.pool.max_size = 4;
        config.pool.acquire_timeout = Some(Duration::from_secs(30));
        let pool = config.build_pool_lazy().unwrap();

        let writers = Writers::start(3, {
            let pool = pool.clone();
            move |id: i32| {
                let pool = pool.clone();
                async move {
                    let conn = pool.get().await.map_err(|e| format!("{e:#}"))?;
                    let row = conn
                        .query_one(
                            "INSERT INTO writes VALUES ($1, inet_server_port()) RETURNING port",
                            &[&id],
                        )
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok::<i32, String>(row.get(0))
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;

        // The failover: the primary stops, the standby is promoted, and the old primary comes
        // back fenced (read-only), as a node that rejoins before it is rebuilt would.
        let failover_at = Instant::now();
        clusters.stop("old");
        let promoted: bool = connect(new)
            .await
            .query_one("SELECT pg_promote()", &[])
            .await
            .unwrap()
            .get(0);
        assert!(promoted);
        clusters.start("old", old, "-c default_transaction_read_only=on");

        eventually(
            "writes reach the new primary",
            Duration::from_secs(30),
            || {
                let pool = pool.clone();
                async move {
                    let conn = pool.get().await.map_err(|e| format!("{e:#}"))?;
                    let port: i32 = conn
                        .query_one("SELECT inet_server_port()", &[])
                        .await
                        .map_err(|e| e.to_string())?
                        .get(0);
                    if port == i32::from(new) {
                        Ok(())
                    } else {
                        Err(format!("served by {port}"))
                    }
                }
            },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let writes = writers.stop().await;

        let on = |port: u16| {
            writes
                .iter()
                .filter(move |w| w.outcome.as_ref().is_ok_and(|p| *p == i32::from(port)))
        };
        // The old primary holds exactly the writes it committed before it stopped.
        let old_ids: Vec<i32> = connect(old)
            .await
            .query("SELECT id FROM writes ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        // A write cut off by the stop may have committed there too; no other did.
        let cut_off: Vec<i32> = writes
            .iter()
            .filter(|w| w.outcome.is_err())
            .map(|w| w.id)
            .collect();
        for write in on(old) {
            assert!(old_ids.contains(&write.id), "write {} was lost", write.id);
        }
        for id in &old_ids {
            assert!(
                on(old).any(|w| w.id == *id) || cut_off.contains(id),
                "write {id} reached the old primary"
            );
        }
        // Every write the new primary committed is there, and the ones before the failover
        // came with the standby.
        let new_client = connect(new).await;
        for write in on(new).chain(on(old)) {
            let n: i64 = new_client
                .query_one("SELECT count(*) FROM writes WHERE id = $1", &[&write.id])
                .await
                .unwrap()
                .get(0);
            assert_eq!(n, 1, "write {} is missing on the new primary", write.id);
        }
        let first_on_new = on(new)
            .map(|w| w.at)
            .min()
            .expect("writes on the new primary");
        assert!(
            on(old).all(|w| w.at < first_on_new),
            "a write went to the old primary after the switch"
        );
        let failed: Vec<_> = writes.iter().filter(|w| w.outcome.is_err()).collect();
        let window = error_window(&writes);
        println!(
            "promotion: {} writes, {} on the old primary, {} on the new one, {} failed within {window:?}; \
             first write on the new primary {:?} after the old one was told to stop",
            writes.len(),
            on(old).count(),
            on(new).count(),
            failed.len(),
            first_on_new.duration_since(failover_at),
        );
        for write in failed.iter().take(3) {
            println!("  failed: {:?}", write.outcome);
        }

        // A pooled session whose server is fenced while it idles is not handed out: the
        // checkout asks for the role (past the skip-check window), and with no writable
        // server left the caller gets the reason rather than a read-only session.
        assert!(pool.status().idle > 0);
        for sql in [
            "ALTER SYSTEM SET default_transaction_read_only = on",
            "SELECT pg_reload_conf()",
        ] {
            new_client.batch_execute(sql).await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let error = pool
            .get_timeout(Duration::from_secs(2))
            .await
            .expect_err("no server accepts writes");
        let text = format!("{error:#}");
        assert!(
            text.contains("no longer read-write") || text.contains("does not allow writes"),
            "{text}"
        );
        for sql in [
            "ALTER SYSTEM RESET default_transaction_read_only",
            "SELECT pg_reload_conf()",
        ] {
            new_client.batch_execute(sql).await.unwrap();
        }
        eventually("writes resume", Duration::from_secs(30), || {
            let pool = pool.clone();
            async move {
                let conn = pool.get().await.map_err(|e| format!("{e:#}"))?;
                conn.execute("INSERT INTO writes VALUES (-1, inet_server_port())", &[])
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        })
        .await;
    };
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("the promotion test took over two minutes");
    drop(clusters);
}
