//! A mock manager that counts the connections it has open, for the budget's behaviour tests.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pool_core::Manager;

/// Counts of open connections, shared by every manager of one test.
#[derive(Debug, Default)]
pub struct Server {
    open: AtomicUsize,
    most: AtomicUsize,
    opened: AtomicUsize,
}

impl Server {
    pub fn new() -> Arc<Server> {
        Arc::new(Server::default())
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// The most connections ever open at once.
    pub fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }

    /// Connections opened in all.
    pub fn opened(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }
}

/// One open connection of `tenant`; closing it (dropping) tells the server.
#[derive(Debug)]
pub struct Session {
    pub tenant: &'static str,
    server: Arc<Server>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.server.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Opens sessions of one tenant, each after a short (virtual) delay.
pub struct Tenant {
    pub name: &'static str,
    pub server: Arc<Server>,
}

impl Tenant {
    pub fn new(name: &'static str, server: &Arc<Server>) -> Tenant {
        Tenant {
            name,
            server: Arc::clone(server),
        }
    }
}

impl Manager for Tenant {
    type Connection = Session;
    type Error = std::io::Error;

    async fn connect(&self) -> Result<Session, std::io::Error> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let now = self.server.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.server.most.fetch_max(now, Ordering::SeqCst);
        self.server.opened.fetch_add(1, Ordering::SeqCst);
        Ok(Session {
            tenant: self.name,
            server: Arc::clone(&self.server),
        })
    }

    async fn check(&self, _: &mut Session) -> Result<(), std::io::Error> {
        Ok(())
    }
}

/// Lets every ready task run, in paused time.
pub async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// Partitions named `names` on `budget`, each within `limits`, all on one new server.
pub fn tenants<const N: usize>(
    budget: pool_fleet::Budget,
    names: [&'static str; N],
    limits: pool_fleet::PartitionLimits,
) -> (
    Arc<Server>,
    pool_fleet::Partitions<&'static str, Tenant>,
    [pool_fleet::PartitionPool<Tenant>; N],
) {
    let server = Server::new();
    let parts = pool_fleet::Partitions::new(budget);
    let pools = names.map(|name| {
        parts
            .add(name, Tenant::new(name, &server), limits.clone())
            .unwrap()
    });
    (server, parts, pools)
}
