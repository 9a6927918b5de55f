//! What every driver's configuration shares: reading pool settings from the environment, and
//! hiding passwords in URLs that are printed.

use std::time::Duration;

use crate::InvalidConfig;

/// Reads `{prefix}_URL`.
pub(crate) fn url_from_env(prefix: &str) -> Result<String, InvalidConfig> {
    let name = format!("{prefix}_URL");
    var(&name)?.ok_or_else(|| InvalidConfig::new(name, "is not set"))
}

/// Overrides the pool settings found in the environment under `prefix`: the variables of the
/// README's environment table, which is the one list of them.
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

/// `pool` with `name` as its [`name`](pool_core::Config::name) when it has none: the drivers
/// name their pools `host:port/database` unless told otherwise.
pub(crate) fn named(pool: &pool_core::Config, name: impl FnOnce() -> String) -> pool_core::Config {
    let mut pool = pool.clone();
    if pool.name.is_none() {
        pool.name = Some(name());
    }
    pool
}

/// The `host:port/database` part of a connection URL, for a pool's name: what follows the
/// scheme and the user information, up to the query. Found by position like the redaction, so
/// no part of a password can end up in it.
#[cfg_attr(
    not(any(feature = "mysql", feature = "redis", feature = "_sqlx")),
    allow(dead_code)
)]
pub(crate) fn name_from_url(url: &str) -> String {
    let layout = layout(url);
    let start = match (&layout.userinfo, layout.scheme_colon) {
        (Some(userinfo), _) => userinfo.end + 1,
        (None, Some(colon)) => {
            colon + 1 + url[colon + 1..].bytes().take_while(|&b| b == b'/').count()
        }
        (None, None) => 0,
    };
    let rest = &url[start.min(url.len())..];
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    rest[..end].trim_end_matches('/').to_owned()
}

// Secrets in connection URLs, found by position.
//
// Parsers disagree about malformed URLs: the `url` crate ends the user information at the last
// `@` before the first `/`, `?` or `#`, tokio_postgres at the first `@` anywhere, and a password
// holding one of those characters moves the cut. So what is hidden is decided by position
// alone, the same way for every driver and whatever any parser makes of the URL: everything
// between `scheme:` (and its slashes) and the last `@`, and the value of every query parameter
// whose name says password. `check_url` then refuses the URLs a parser would cut elsewhere,
// so that nothing the parser hands on (a host, a user name, a database name that `Debug`
// shows) can hold a piece of the password either.

/// Names of query parameters whose value is taken for a secret, matched in any case and
/// anywhere in the (percent-decoded) name: `password`, `sslpassword`, `pass`, `pwd`,
/// `auth_token`, ...
const SECRET_PARAMETERS: [&str; 4] = ["pass", "pwd", "secret", "token"];

/// Characters after which a query parameter starts. `;` is no separator for the drivers'
/// parsers, but URLs written for other tools use it, so a parameter after it is hidden too.
const PARAMETER_STARTS: [char; 3] = ['?', '&', ';'];

/// Where the secrets of a URL are, by position.
#[derive(Debug, Default)]
struct Layout {
    /// The index of the `:` that ends the scheme, when the URL starts with one.
    scheme_colon: Option<usize>,
    /// Everything between `scheme:` (and the slashes after it) and the last `@`: the user
    /// name and the password.
    userinfo: Option<std::ops::Range<usize>>,
    /// The part of `userinfo` that is the password: after its first `:`; all of it when the
    /// URL has no scheme or the user name holds a `/`, `?`, `#` or `@` (a URL cut elsewhere
    /// than its author meant, so the password may be anywhere in it).
    password: Option<std::ops::Range<usize>>,
    /// The parameters whose name says password.
    parameters: Vec<Parameter>,
}

/// A query parameter whose name says password.
#[derive(Debug)]
struct Parameter {
    /// The character before it: `?`, `&` or `;`.
    after: char,
    /// Its name.
    name: std::ops::Range<usize>,
    /// Its value; the whole parameter when it has no `=`.
    value: std::ops::Range<usize>,
}

/// The index of the `:` that ends `url`'s scheme (`[A-Za-z][A-Za-z0-9+.-]*:`), if it has one.
fn scheme_colon(url: &str) -> Option<usize> {
    let end = url.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))?;
    let starts_with_letter = url.as_bytes().first().is_some_and(u8::is_ascii_alphabetic);
    (starts_with_letter && url[end..].starts_with(':')).then_some(end)
}

/// `url`'s scheme, when it starts with one.
#[cfg_attr(
    not(any(feature = "tcp", feature = "redis", feature = "_sqlx")),
    allow(dead_code)
)]
pub(crate) fn scheme(url: &str) -> Option<&str> {
    scheme_colon(url).map(|colon| &url[..colon])
}

/// Finds where `url`'s secrets are. One layout serves the redaction, the test of what an error
/// message may quote, and the refusal of URLs a parser would cut elsewhere, so the three agree.
fn layout(url: &str) -> Layout {
    let scheme_colon = scheme_colon(url);
    // Any number of slashes (or backslashes) may follow the scheme in a mistyped URL.
    let start = scheme_colon.map_or(0, |colon| {
        colon
            + 1
            + url[colon + 1..]
                .bytes()
                .take_while(|b| matches!(b, b'/' | b'\\'))
                .count()
    });
    let mut layout = Layout {
        scheme_colon,
        ..Layout::default()
    };
    if let Some(at) = url[start..].rfind('@').map(|i| start + i) {
        let colon = url[start..at].find(':').map(|i| start + i);
        let user = &url[start..colon.unwrap_or(at)];
        layout.userinfo = Some(start..at);
        layout.password = if scheme_colon.is_none() || user.contains(['/', '?', '#', '@']) {
            Some(start..at)
        } else {
            colon.map(|colon| colon + 1..at)
        };
    }
    for (i, c) in url.char_indices() {
        if !PARAMETER_STARTS.contains(&c) {
            continue;
        }
        let begin = i + 1;
        // The value runs to the next `&` only: a password may hold `;`, `?` or `#`.
        let end = url[begin..].find('&').map_or(url.len(), |j| begin + j);
        let parameter = &url[begin..end];
        let (name, value) = match parameter.find('=') {
            Some(eq) => (begin..begin + eq, begin + eq + 1..end),
            None => (begin..end, begin..end),
        };
        if is_secret_parameter(&url[name.clone()]) {
            layout.parameters.push(Parameter {
                after: c,
                name,
                value,
            });
        }
    }
    layout
}

/// Whether a query parameter's name says that its value is a secret.
fn is_secret_parameter(name: &str) -> bool {
    let name = percent_decode(name).to_ascii_lowercase();
    SECRET_PARAMETERS.iter().any(|s| name.contains(s))
}

/// `url` with its password and the value of every parameter whose name says password replaced
/// by `***`, for `Debug` output and logs.
///
/// The parts are found by position, whatever a parser would make of the URL, so a password
/// holding `#`, `/`, `?` or `@`, a doubled scheme or a missing `//` still leave it hidden: the
/// password is everything between the first `:` after `scheme://` and the last `@`. Only a
/// user name of that clean `user:password` shape stays readable; otherwise everything between
/// the scheme and the last `@` is hidden (no `:`, no scheme, or a user part holding `/`, `?`,
/// `#` or `@`: signs of a URL cut elsewhere than meant, or of a password whose `:` was lost).
#[cfg_attr(
    not(any(feature = "mysql", feature = "redis", feature = "_sqlx")),
    allow(dead_code)
)]
pub(crate) fn redact_url(url: &str) -> String {
    let layout = layout(url);
    let mut hidden: Vec<std::ops::Range<usize>> = layout
        .password
        .or(layout.userinfo)
        .into_iter()
        .chain(layout.parameters.into_iter().map(|p| p.value))
        .filter(|r| !r.is_empty())
        .collect();
    hidden.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(url.len());
    let mut shown_up_to = 0;
    for range in hidden {
        if range.end <= shown_up_to {
            continue;
        }
        if range.start >= shown_up_to {
            out.push_str(&url[shown_up_to..range.start]);
            out.push_str("***");
        }
        shown_up_to = range.end;
    }
    out.push_str(&url[shown_up_to..]);
    out
}

/// Whether `text` shows any part of a password of `url`: the password or a password
/// parameter's value, raw or percent-decoded, whole or any piece of three characters or more
/// between the delimiters a parser cuts at, in any case (hosts are lowercased).
///
/// For text a parser wrote about `url` (its error messages quote what they read): such text
/// is shown only when this says no.
pub(crate) fn shows_secret(url: &str, text: &str) -> bool {
    let layout = layout(url);
    let text = text.to_lowercase();
    let secrets = layout
        .password
        .into_iter()
        .chain(layout.parameters.into_iter().map(|p| p.value))
        .map(|range| &url[range])
        .filter(|s| !s.is_empty());
    for secret in secrets {
        let decoded = percent_decode(secret);
        let form_decoded = percent_decode(&secret.replace('+', " "));
        for whole in [secret, decoded.as_str(), form_decoded.as_str()] {
            let whole = whole.to_lowercase();
            if text.contains(&whole) {
                return true;
            }
            let pieces = whole.split(|c: char| {
                "@:/?#&=;,[]\\".contains(c) || c.is_whitespace() || c.is_control()
            });
            if pieces
                .filter(|p| p.chars().count() >= 3)
                .any(|p| text.contains(p))
            {
                return true;
            }
        }
    }
    false
}

/// `text` (a scheme, a parameter's name or value read from `url`) in backticks, for an error
/// message, or `None` when it could show a password or would not read well.
pub(crate) fn quoted(url: &str, text: &str) -> Option<String> {
    let readable = !text.is_empty()
        && text.chars().count() <= 64
        && !text.chars().any(|c| c.is_control() || c == '`');
    (readable && !shows_secret(url, text)).then(|| format!("`{text}`"))
}

/// `message`, a parser's own description of what is wrong with `url`, unless it shows a piece
/// of a password, in which case `fallback`.
#[cfg_attr(
    not(any(
        feature = "postgres",
        feature = "mysql",
        feature = "redis",
        feature = "_sqlx"
    )),
    allow(dead_code)
)]
pub(crate) fn unless_secret(url: &str, message: String, fallback: &str) -> String {
    if shows_secret(url, &message) {
        fallback.to_owned()
    } else {
        message
    }
}

/// How a driver's URL parser finds the user information, which decides the URLs it would read
/// differently from [`redact_url`].
// Each variant is used only with its drivers' features.
#[cfg_attr(
    not(all(
        feature = "postgres",
        any(feature = "mysql", feature = "redis", feature = "_sqlx")
    )),
    allow(dead_code)
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UrlGrammar {
    /// The WHATWG URL standard, as the `url` crate implements it (mysql_async, redis, sqlx):
    /// the host part ends at the first `/`, `?` or `#` after `scheme://`, the user
    /// information at the last `@` before that.
    Whatwg,
    /// tokio_postgres: the user information ends at the first `@`, wherever it is, and may
    /// hold `/`, `?` and `#`.
    TokioPostgres,
}

/// The percent-decoded names of `url`'s parameters that are named like a password (a
/// parameter without `=` is all name).
#[cfg_attr(not(feature = "_sqlx"), allow(dead_code))]
pub(crate) fn secret_parameters(url: &str) -> impl Iterator<Item = String> + '_ {
    // One inside the user information is part of the password, not a parameter.
    let layout = layout(url);
    let after = layout.userinfo.map_or(0, |userinfo| userinfo.end);
    layout
        .parameters
        .into_iter()
        .filter(move |p| p.name.start > after)
        .map(move |p| percent_decode(&url[p.name]))
}

/// Refuses a URL that `grammar` would cut elsewhere than [`redact_url`] does, so that no part
/// of the password can end up in the host, the user name, the database or a parameter the
/// driver reads (and then in its `Debug` output or an error): an `@` that is not followed by
/// the host, a user name or (for the `url` crate) a password holding `/`, `?` or `#`, more
/// than one `@` for tokio_postgres, or a password parameter outside the query. A URL without
/// a scheme is left to the driver, which refuses it.
///
/// The message names the problem and the fix (percent-encoding) and quotes nothing of the URL.
#[cfg_attr(
    not(any(
        feature = "postgres",
        feature = "mysql",
        feature = "redis",
        feature = "_sqlx"
    )),
    allow(dead_code)
)]
pub(crate) fn check_url(
    url: &str,
    setting: &str,
    grammar: UrlGrammar,
) -> Result<(), InvalidConfig> {
    let bad = |problem: &str| Err(InvalidConfig::new(setting, problem));
    let layout = layout(url);
    let host_start = match (&layout.userinfo, layout.scheme_colon) {
        (None, _) => layout.scheme_colon.map_or(0, |colon| colon + 1),
        (Some(userinfo), Some(colon)) => {
            if userinfo.start != colon + 3 || !url[colon + 1..].starts_with("//") {
                return bad("has an `@` but not right after `scheme://user:password`; \
                     percent-encode an `@` in a path or a parameter as %40");
            }
            let user_end = url[userinfo.clone()]
                .find(':')
                .map_or(userinfo.end, |i| userinfo.start + i);
            let user = &url[userinfo.start..user_end];
            let password = &url[user_end..userinfo.end];
            if user.contains(['/', '?', '#', '@']) {
                return bad(
                    "has an `@` after its host, or a user name holding `/`, `?`, `#` or `@`; \
                     percent-encode these characters (%2F, %3F, %23, %40)",
                );
            }
            match grammar {
                UrlGrammar::Whatwg if password.contains(['/', '?', '#']) => {
                    return bad(
                        "has a password holding `/`, `?` or `#`, which end the host part of \
                         a URL; percent-encode them (%2F, %3F, %23)",
                    );
                }
                UrlGrammar::TokioPostgres if password.contains('@') => {
                    return bad(
                        "has more than one `@`; percent-encode an `@` in the password or a \
                         parameter as %40",
                    );
                }
                _ => {}
            }
            userinfo.end + 1
        }
        // No scheme: every driver refuses such a URL itself, naming the scheme it expects,
        // with a message that quotes none of it.
        (Some(_), None) => return Ok(()),
    };
    let query = url[host_start..]
        .find('?')
        .map_or(url.len(), |i| host_start + i);
    // The parsers split the query at `&` only: a password parameter anywhere else would be
    // read as part of the host, the path or another parameter's value. One wholly inside the
    // user information is part of the password, and hidden with it.
    let userinfo_end = layout.userinfo.as_ref().map_or(0, |userinfo| userinfo.end);
    let misplaced = layout.parameters.iter().any(|p| {
        let in_query = p.name.start > query && (p.after == '&' || p.name.start == query + 1);
        p.value.end > userinfo_end && !in_query
    });
    if misplaced {
        return bad(
            "has a password parameter outside its query string, or after a `;` or `?` \
             instead of `&`",
        );
    }
    Ok(())
}

/// `%XX` escapes decoded; a malformed escape is kept as it is, invalid UTF-8 becomes U+FFFD.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
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

/// A yes-or-no setting as URLs and environment variables write it: `true`, `1`, `on` or
/// `false`, `0`, `off`; `None` for anything else.
#[cfg_attr(not(any(feature = "postgres", feature = "tcp")), allow(dead_code))]
pub(crate) fn parse_flag(value: &str) -> Option<bool> {
    match value.trim() {
        "true" | "1" | "on" => Some(true),
        "false" | "0" | "off" => Some(false),
        _ => None,
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
    fn pools_are_named_after_the_server_and_database_without_secrets() {
        for (url, name) in [
            (
                "mysql://root:pw@127.0.0.1:3306/test?x=1",
                "127.0.0.1:3306/test",
            ),
            ("redis://:s3cret@cache:6379/2", "cache:6379/2"),
            ("redis://127.0.0.1:6379/", "127.0.0.1:6379"),
            ("p://u:a@b@host/x", "host/x"),
            ("sqlite:///tmp/app.db?mode=ro", "tmp/app.db"),
            ("x://h/db?password=pw", "h/db"),
        ] {
            assert_eq!(name_from_url(url), name, "{url}");
        }
    }

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
    fn redaction_hides_passwords_by_position() {
        let cases = [
            (
                "postgres://app:s3cret@db:5432/app?sslmode=require",
                "postgres://app:***@db:5432/app?sslmode=require",
            ),
            ("redis://:pw@127.0.0.1/0", "redis://:***@127.0.0.1/0"),
            // Without a `:`, or with a user part no user name looks like, it all goes.
            ("mysql://root@127.0.0.1/test", "mysql://***@127.0.0.1/test"),
            ("mysql://app/x:pw@db/app", "mysql://***@db/app"),
            ("tcp://127.0.0.1:9", "tcp://127.0.0.1:9"),
            // The last `@` ends the user information, whatever the password holds.
            ("p://u:a@b@host/x", "p://u:***@host/x"),
            ("mysql://app:Zq9#SE/CR?ET@db/app", "mysql://app:***@db/app"),
            // A doubled scheme, a missing `//`, no scheme at all.
            ("mysql://mysql://app:pw@db/app", "mysql://mysql:***@db/app"),
            ("mysql:app:pw@db/app", "mysql:app:***@db/app"),
            ("mysql:///app:pw@db", "mysql:///app:***@db"),
            ("r/app:pw@mysql://db", "***@mysql://db"),
            // Password parameters, in any case and spelling, with or without `=`.
            (
                "redis+unix:///tmp/r.sock?db=1&pass=pw",
                "redis+unix:///tmp/r.sock?db=1&pass=***",
            ),
            (
                "postgres://app@h/db?PassWord=pw&sslmode=disable",
                "postgres://***@h/db?PassWord=***&sslmode=disable",
            ),
            (
                "sqlite:///tmp/a.db?mode=ro&pwd=a#b?c",
                "sqlite:///tmp/a.db?mode=ro&pwd=***",
            ),
            ("x://h/db?pa%73s=pw", "x://h/db?pa%73s=***"),
            ("x://h/db?passwordpw", "x://h/db?***"),
            ("x://h/db;password=pw;x=1", "x://h/db;password=***"),
            (
                "x://h/db?application_name=api",
                "x://h/db?application_name=api",
            ),
        ];
        for (url, redacted) in cases {
            assert_eq!(redact_url(url), redacted, "{url}");
        }
    }

    #[test]
    fn secrets_are_found_in_text_in_any_form() {
        let url = "mysql://app:Zq9%40SE%2fCRET#x7@db/app";
        assert!(shows_secret(url, "invalid port `Zq9@SE/CRET`"));
        assert!(shows_secret(url, "database `cret#x7`"));
        assert!(shows_secret(url, "host zq9@se"));
        assert!(!shows_secret(url, "unknown option `app`"));
        assert!(!shows_secret(url, "expected mysql://user:password@host"));
        assert!(shows_secret("redis://h/0?pass=a+b%2Bc", "a b+c"));
        assert!(
            shows_secret("x:u:Secret@h", "u:secret"),
            "no scheme: all of it"
        );
        assert_eq!(
            quoted("mysql://u:pw@h/db?colour=1", "colour").as_deref(),
            Some("`colour`")
        );
        assert_eq!(quoted("mysql://u:hunter2@h/db", "hunter2"), None);
        assert_eq!(quoted("mysql://u@h/db", "a\nb"), None);
    }

    #[test]
    fn urls_a_parser_would_cut_elsewhere_are_refused() {
        let whatwg =
            |url: &str| check_url(url, "url", UrlGrammar::Whatwg).map_err(|e| e.to_string());
        let postgres =
            |url: &str| check_url(url, "url", UrlGrammar::TokioPostgres).map_err(|e| e.to_string());
        for ok in [
            "mysql://app:pw@h:3306/db?x=1",
            "mysql://app:p@ss@h/db",
            "mysql://h/db",
            "mysql://app:Zq9%2F%23@h/db",
            "redis+unix:///tmp/r.sock?db=1&pass=pw",
            "127.0.0.1:3306",
            // No scheme: the driver refuses it, saying which scheme it expects.
            "mysql//root:pw@h/db",
        ] {
            assert_eq!(whatwg(ok), Ok(()), "{ok}");
        }
        for (bad, expected) in [
            ("mysql://app:Zq9/x7@h/db", "password holding"),
            ("mysql://app:Zq9#x7@h/db", "password holding"),
            ("mysql://app/x:pw@h/db", "user name holding"),
            ("mysql://h/db?x=a@b", "after its host"),
            ("mysql:///app:pw@h/db", "right after `scheme://"),
            ("mysql:app:pw@h/db", "right after `scheme://"),
            (
                "redis+unix:///tmp/r.sock?pass=a@b",
                "right after `scheme://",
            ),
            ("app:pw@h/db", "right after `scheme://"),
            ("mysql://app@h/db&password=pw", "outside its query"),
            ("mysql://app@h/db?x=1;password=pw", "after a `;`"),
            ("redis://h/0?user=u?pass=pw", "after a `;` or `?`"),
        ] {
            let err = whatwg(bad).unwrap_err();
            assert!(err.contains(expected), "{bad}: {err}");
            assert!(!err.contains("pw") && !err.contains("x7"), "{bad}: {err}");
        }
        assert_eq!(
            postgres("postgres://app:Zq9/x?7#@h/db?sslmode=disable"),
            Ok(())
        );
        assert!(postgres("postgres://app:p@ss@h/db")
            .unwrap_err()
            .contains("more than one `@`"));
        assert!(postgres("postgres://h/db?application_name=a@b").is_err());
        // A password parameter that straddles the `@` would put its value in the host.
        assert!(postgres("postgres://app:x?pwd=a@secret/db").is_err());
    }
}
