//! What every driver's configuration shares: reading pool settings from the environment, and
//! hiding passwords in URLs that are printed.

use std::time::Duration;

use crate::InvalidConfig;

/// Reads `{prefix}_URL`.
pub(crate) fn url_from_env(prefix: &str) -> Result<String, InvalidConfig> {
    let name = format!("{prefix}_URL");
    var(&name)?.ok_or_else(|| InvalidConfig::new(name, "is not set"))
}

/// Overrides the pool settings found in the environment under `prefix`:
/// `{prefix}_MAX_SIZE`, `{prefix}_MIN_IDLE`, `{prefix}_INITIAL_SIZE`,
/// `{prefix}_ACQUIRE_TIMEOUT`, `{prefix}_CONNECT_TIMEOUT`, `{prefix}_MAX_LIFETIME` and
/// `{prefix}_IDLE_TIMEOUT`. Durations are written `250ms`, `30s`, `5m` or `1h` (a bare number is
/// seconds); `none` turns an optional limit off.
pub(crate) fn pool_from_env(
    prefix: &str,
    pool: &mut pool_core::Config,
) -> Result<(), InvalidConfig> {
    let var = |suffix: &str| format!("{prefix}_{suffix}");
    if let Some(n) = count(&var("MAX_SIZE"))? {
        pool.max_size = n;
    }
    if let Some(n) = count(&var("MIN_IDLE"))? {
        pool.min_idle = n;
    }
    if let Some(n) = count(&var("INITIAL_SIZE"))? {
        pool.initial_size = n;
    }
    if let Some(d) = duration(&var("ACQUIRE_TIMEOUT"))? {
        pool.acquire_timeout = d;
    }
    if let Some(d) = duration(&var("CONNECT_TIMEOUT"))? {
        pool.connect_timeout = d.unwrap_or(Duration::MAX);
    }
    if let Some(d) = duration(&var("MAX_LIFETIME"))? {
        pool.max_lifetime = d;
    }
    if let Some(d) = duration(&var("IDLE_TIMEOUT"))? {
        pool.idle_timeout = d;
    }
    Ok(())
}

/// A pool that opens its connections on demand: every driver's `create_pool`.
pub(crate) fn lazy_pool<M: pool_core::Manager>(
    manager: M,
    pool: &pool_core::Config,
) -> Result<pool_core::Pool<M>, InvalidConfig> {
    Ok(pool_core::Pool::builder(manager)
        .config(pool.clone())
        .build_lazy()?)
}

/// A pool with its initial connections open: every driver's `build_pool`. A configuration that
/// could not make a manager fails like a first connect would, as the driver's error made by
/// `invalid`.
pub(crate) async fn open_pool<M: pool_core::Manager>(
    manager: Result<M, InvalidConfig>,
    pool: &pool_core::Config,
    invalid: impl FnOnce(InvalidConfig) -> M::Error,
) -> Result<pool_core::Pool<M>, pool_core::BuildError<M::Error>> {
    let manager = manager.map_err(|e| {
        pool_core::BuildError::Connect(pool_core::ConnectError::Backend(invalid(e)))
    })?;
    pool_core::Pool::builder(manager)
        .config(pool.clone())
        .build()
        .await
}

/// `url` with its password, if any, replaced by `***`, for `Debug` output and logs.
#[cfg_attr(
    not(any(feature = "mysql", feature = "redis", feature = "_sqlx")),
    allow(dead_code)
)]
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    let Some(at) = url[scheme_end..authority_end]
        .rfind('@')
        .map(|i| scheme_end + i)
    else {
        return url.to_owned();
    };
    match url[scheme_end..at].find(':') {
        Some(colon) => format!("{}:***{}", &url[..scheme_end + colon], &url[at..]),
        None => url.to_owned(),
    }
}

/// The variable `name`, if set.
pub(crate) fn var(name: &str) -> Result<Option<String>, InvalidConfig> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(InvalidConfig::new(name, "is not valid UTF-8"))
        }
    }
}

fn count(name: &str) -> Result<Option<usize>, InvalidConfig> {
    var(name)?
        .map(|v| {
            v.trim().parse().map_err(|_| {
                InvalidConfig::new(name, format!("expected a whole number, found {v:?}"))
            })
        })
        .transpose()
}

/// `Some(None)` for `none`, `Some(Some(d))` for a duration, `None` when unset.
pub(crate) fn duration(name: &str) -> Result<Option<Option<Duration>>, InvalidConfig> {
    let Some(value) = var(name)? else {
        return Ok(None);
    };
    let parsed = if value.trim().eq_ignore_ascii_case("none") {
        Some(None)
    } else {
        parse_duration(&value).map(Some)
    };
    parsed.map(Some).ok_or_else(|| {
        InvalidConfig::new(
            name,
            format!("expected a duration such as 250ms, 30s, 5m or none, found {value:?}"),
        )
    })
}

/// `250ms`, `30s`, `5m` or `1h`; a bare number is seconds.
pub(crate) fn parse_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    let digits = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let number: u64 = value[..digits].parse().ok()?;
    let unit = match value[digits..].trim() {
        "ms" => Duration::from_millis(1),
        "" | "s" => Duration::from_secs(1),
        "m" | "min" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return None,
    };
    unit.checked_mul(u32::try_from(number).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("none"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/app?sslmode=require"),
            "postgres://app:***@db:5432/app?sslmode=require"
        );
        assert_eq!(
            redact_url("redis://:pw@127.0.0.1/0"),
            "redis://:***@127.0.0.1/0"
        );
        assert_eq!(
            redact_url("mysql://root@127.0.0.1/test"),
            "mysql://root@127.0.0.1/test"
        );
        assert_eq!(redact_url("tcp://127.0.0.1:9"), "tcp://127.0.0.1:9");
        assert_eq!(redact_url("p://u:a@b@host/x"), "p://u:***@host/x");
    }
}
