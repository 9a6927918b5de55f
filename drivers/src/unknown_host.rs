//! The unknown-host check: drivers report a failed name lookup as an I/O error like any other,
//! which reads as transient; looked up again on the failure path, a name that does not resolve
//! is told apart from a network problem and reported as permanent.

use std::io;
use std::net::IpAddr;

/// The first host whose name does not resolve, with the resolver's error, when none of
/// `hosts` (names with their ports) resolves; `None` when one of them resolves, one is an IP
/// address (nothing to resolve), or there is none.
///
/// Run only after a connect failed, so a working connect never pays for a lookup.
///
/// # Cancel safety
///
/// Dropping the future stops the lookups; nothing is left behind.
pub(crate) async fn unresolved_host<'a>(
    hosts: impl IntoIterator<Item = (&'a str, u16)>,
) -> Option<(String, io::Error)> {
    let mut first_failure = None;
    for (host, port) in hosts {
        if host.parse::<IpAddr>().is_ok() {
            return None;
        }
        match tokio::net::lookup_host((host, port)).await {
            Ok(_) => return None,
            Err(e) => {
                first_failure.get_or_insert((host.to_owned(), e));
            }
        }
    }
    first_failure
}
