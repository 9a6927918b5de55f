//! Role pools on the dashboard: the write, replica and admin pools of a
//! [`DatabasePools`], each labelled with its role, replicas with whether they are in rotation.

use pool_core::Manager;
use pool_roles::DatabasePools;

use crate::source::Source;
use crate::Dashboard;

impl Dashboard {
    /// Adds every pool of `pools`: the write pool (role `write`), each replica (`replica 0`,
    /// `replica 1`, ..., with whether it is in the read rotation) and the admin pool if there
    /// is one (`admin`).
    pub fn database_pools<M: Manager>(mut self, pools: &DatabasePools<M>) -> Self {
        self.add(Source::pool(
            pools.write_pool().pool(),
            Some("write".to_owned()),
        ));
        let read = pools.read_pool();
        for (index, replica) in read.replicas().enumerate() {
            let mut source = Source::pool(replica, Some(format!("replica {index}")));
            let read = read.clone();
            source.in_rotation = Some(Box::new(move || read.is_healthy(index)));
            self.add(source);
        }
        if let Some(admin) = pools.admin_pool() {
            self.add(Source::pool(admin.pool(), Some("admin".to_owned())));
        }
        self
    }
}
