//! The proxy's TOML configuration, turned into validated routes in one pass.
//!
//! ```toml
//! max_connections = 1024        # all routes together
//! connect_timeout = "10s"       # default for routes that set none
//! idle_timeout = "5m"           # default for routes that set none
//! shutdown_timeout = "30s"
//! dns_refresh_interval = "30s"
//!
//! [[route]]
//! listen = "vsock:8000"         # or "tcp:IP:PORT"
//! upstream = "kms.us-east-1.amazonaws.com:443"
//! max_connections = 64          # this route alone; optional
//! connect_timeout = "5s"        # optional
//! idle_timeout = "2m"           # optional
//! ```
//!
//! Durations are strings of a whole number and a unit: `ms`, `s`, `m` or `h` ("250ms", "30s",
//! "5m", "1h"). Limits must be greater than zero, and a route's `max_connections` must not be
//! above the top-level one (1024 when not set), which is rejected rather than warned about.
//! A route whose upstream is one of the proxy's own TCP listeners is rejected, because it
//! would relay into itself. Unknown fields are errors.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Semaphore;

use super::addr::{ListenAddr, Upstream};
use super::config_error::{ConfigError, Location, Origin, Problems};

/// Default of the top-level `max_connections`, the cap over all routes together.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 1024;
/// Default of `connect_timeout`: name resolution and TCP connect to the upstream, all
/// addresses together.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of `idle_timeout`: a connection with no bytes in either direction for this long is
/// closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default of `shutdown_timeout`: how long live connections may finish after a shutdown signal.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of `dns_refresh_interval`, the age after which upstream addresses are resolved again.
pub const DEFAULT_DNS_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// A validated proxy configuration: at least one route, distinct listeners, valid upstreams
/// and non-zero limits.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    routes: Vec<RouteConfig>,
    max_connections: u32,
    shutdown_timeout: Duration,
    dns_refresh_interval: Duration,
}

/// One `[[route]]`: connections accepted on `listen` are relayed to `upstream`, and to nothing
/// else.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    index: usize,
    listen: ListenAddr,
    upstream: Upstream,
    max_connections: Option<u32>,
    connect_timeout: Duration,
    idle_timeout: Duration,
}

impl ProxyConfig {
    /// Reads and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            crate::file_input::read_limited_to_string(path, crate::file_input::MAX_CONFIG_LEN)
                .map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
        Self::parse(&text, Origin::File(path.to_owned()))
    }

    /// Validates a configuration given as TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text, Origin::Text)
    }

    fn parse(text: &str, origin: Origin) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|error| {
            let (line, column) = error
                .span()
                .map(|span| line_and_column(text, span.start))
                .unwrap_or((1, 1));
            ConfigError::Syntax {
                origin: origin.clone(),
                line,
                column,
                message: error.message().trim_end().to_owned(),
            }
        })?;

        let mut problems = Problems::default();
        let config = Self::from_raw(raw, &mut problems);
        if problems.0.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                origin,
                problems: problems.0,
            })
        }
    }

    /// Converts the raw document, recording every problem found. The result is usable only
    /// when no problem was recorded, since invalid routes are left out of it.
    fn from_raw(raw: RawConfig, problems: &mut Problems) -> Self {
        let top = Location::Top;
        let raw_max_connections_set = raw.max_connections.is_some();

        // Top-level limits, which are also the defaults of each route's timeouts.
        let max_connections = limit(&top, "max_connections", raw.max_connections, problems)
            .unwrap_or(DEFAULT_MAX_CONNECTIONS);
        let connect_timeout = duration(&top, "connect_timeout", raw.connect_timeout, problems)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let idle_timeout = duration(&top, "idle_timeout", raw.idle_timeout, problems)
            .unwrap_or(DEFAULT_IDLE_TIMEOUT);
        let shutdown_timeout = duration(&top, "shutdown_timeout", raw.shutdown_timeout, problems)
            .unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT);
        let dns_refresh_interval = duration(
            &top,
            "dns_refresh_interval",
            raw.dns_refresh_interval,
            problems,
        )
        .unwrap_or(DEFAULT_DNS_REFRESH_INTERVAL);

        if raw.route.is_empty() {
            problems.push(
                &top,
                "route",
                "no [[route]] entries; at least one is required",
            );
        }

        // Routes, each converted on its own so that every broken route is reported.
        let defaults = RouteDefaults {
            connect_timeout,
            idle_timeout,
        };
        let mut routes = Vec::with_capacity(raw.route.len());
        for (index, table) in raw.route.into_iter().enumerate() {
            if let Some(route) = RouteConfig::from_table(index, table, &defaults, problems) {
                routes.push(route);
            }
        }

        // Two routes on one fixed listener could never both be bound.
        let mut first_use: HashMap<&ListenAddr, usize> = HashMap::new();
        for route in routes.iter().filter(|route| route.listen.is_fixed()) {
            if let Some(first) = first_use.insert(&route.listen, route.index) {
                problems.push(
                    &route.location(),
                    "listen",
                    format!("\"{}\" is already used by route[{first}]", route.listen),
                );
            }
        }

        check_loops(&routes, problems);
        for route in &routes {
            check_route_limit(route, max_connections, raw_max_connections_set, problems);
        }

        ProxyConfig {
            routes,
            max_connections,
            shutdown_timeout,
            dns_refresh_interval,
        }
    }

    pub fn routes(&self) -> &[RouteConfig] {
        &self.routes
    }

    /// Maximum number of connections served at once over all routes together.
    pub fn max_connections(&self) -> u32 {
        self.max_connections
    }

    /// Returns the time live connections may run after a shutdown signal before they are closed.
    pub fn shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout
    }

    /// The age after which an upstream's resolved addresses are resolved again. The system
    /// resolver does not return DNS TTLs, so this interval replaces them.
    pub fn dns_refresh_interval(&self) -> Duration {
        self.dns_refresh_interval
    }
}

/// Rejects every route whose upstream is one of the proxy's own TCP listeners: each
/// connection would be relayed back into the proxy, again and again, until the connection
/// limit is used up.
fn check_loops(routes: &[RouteConfig], problems: &mut Problems) {
    let listeners: Vec<(usize, SocketAddr)> = routes
        .iter()
        .filter_map(|route| match route.listen {
            ListenAddr::Tcp(addr) if addr.port() != 0 => Some((route.index, addr)),
            _ => None,
        })
        .collect();
    for route in routes {
        let own = listeners
            .iter()
            .find(|(_, addr)| route.upstream.reaches_listener(*addr));
        if let Some((listener_route, addr)) = own {
            problems.push(
                &route.location(),
                "upstream",
                format!(
                    "\"{}\" is the proxy's own listener tcp:{addr} (route[{listener_route}]), \
                     so connections would loop back into the proxy until max_connections is \
                     used up; set the upstream to the real destination",
                    route.upstream
                ),
            );
        }
    }
}

/// Rejects a route limit above the top-level one: the top-level limit caps all routes
/// together, so the route could never reach its own.
fn check_route_limit(
    route: &RouteConfig,
    top_level: u32,
    top_level_set: bool,
    problems: &mut Problems,
) {
    let Some(limit) = route.max_connections else {
        return;
    };
    if limit > top_level {
        let origin = if top_level_set { "" } else { ", the default" };
        problems.push(
            &route.location(),
            "max_connections",
            format!(
                "invalid value {limit}: above the top-level max_connections ({top_level}{origin}), \
                 which caps all routes together; lower the route's value or raise the \
                 top-level one"
            ),
        );
    }
}

struct RouteDefaults {
    connect_timeout: Duration,
    idle_timeout: Duration,
}

impl RouteConfig {
    fn from_table(
        index: usize,
        table: toml::Table,
        defaults: &RouteDefaults,
        problems: &mut Problems,
    ) -> Option<Self> {
        // The listen value names the route in messages, so it is read before anything else.
        let listen_text = table
            .get("listen")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let location = Location::Route {
            index,
            listen: listen_text.clone(),
        };

        let raw: RawRoute = match toml::Value::Table(table).try_into() {
            Ok(raw) => raw,
            Err(error) => {
                problems.push(&location, "", error.message().trim_end());
                return None;
            }
        };

        // Addresses.
        let listen = match raw.listen {
            None => problems.missing(&location, "listen"),
            Some(value) => parse_addr(&location, "listen", &value, problems),
        };
        let upstream = match raw.upstream {
            None => problems.missing(&location, "upstream"),
            Some(value) => parse_addr(&location, "upstream", &value, problems),
        };

        // Limits; unset timeouts fall back to the top-level values.
        let max_connections = limit(&location, "max_connections", raw.max_connections, problems);
        let connect_timeout = duration(&location, "connect_timeout", raw.connect_timeout, problems)
            .unwrap_or(defaults.connect_timeout);
        let idle_timeout = duration(&location, "idle_timeout", raw.idle_timeout, problems)
            .unwrap_or(defaults.idle_timeout);

        Some(RouteConfig {
            index,
            listen: listen?,
            upstream: upstream?,
            max_connections,
            connect_timeout,
            idle_timeout,
        })
    }

    /// Position of this route among the `[[route]]` entries, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    pub fn listen(&self) -> &ListenAddr {
        &self.listen
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Maximum number of connections served at once on this route, if the route sets one. The
    /// top-level cap applies as well.
    pub fn max_connections(&self) -> Option<u32> {
        self.max_connections
    }

    /// Deadline for resolving the upstream and connecting to one of its addresses.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Time without bytes in either direction after which a connection is closed.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Returns the name used for this route in logs and errors, such as `route[0] (vsock:8000)`.
    pub fn label(&self) -> String {
        format!("route[{}] ({})", self.index, self.listen)
    }

    fn location(&self) -> Location {
        Location::Route {
            index: self.index,
            listen: Some(self.listen.to_string()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    route: Vec<toml::Table>,
    max_connections: Option<toml::Value>,
    connect_timeout: Option<toml::Value>,
    idle_timeout: Option<toml::Value>,
    shutdown_timeout: Option<toml::Value>,
    dns_refresh_interval: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    listen: Option<toml::Value>,
    upstream: Option<toml::Value>,
    max_connections: Option<toml::Value>,
    connect_timeout: Option<toml::Value>,
    idle_timeout: Option<toml::Value>,
}

fn parse_addr<T>(
    location: &Location,
    field: &'static str,
    value: &toml::Value,
    problems: &mut Problems,
) -> Option<T>
where
    T: std::str::FromStr<Err = super::addr::AddrError>,
{
    let Some(text) = value.as_str() else {
        problems.push(
            location,
            field,
            format!("expected a string, found {}", value.type_str()),
        );
        return None;
    };
    match text.parse() {
        Ok(addr) => Some(addr),
        Err(error) => {
            problems.push(
                location,
                field,
                format!("invalid value \"{text}\": {error}"),
            );
            None
        }
    }
}

/// Reads a connection limit: an integer from 1 to the largest semaphore size Tokio supports.
fn limit(
    location: &Location,
    field: &'static str,
    value: Option<toml::Value>,
    problems: &mut Problems,
) -> Option<u32> {
    let value = value?;
    let Some(number) = value.as_integer() else {
        problems.push(
            location,
            field,
            format!("expected an integer, found {}", value.type_str()),
        );
        return None;
    };

    let max = u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX);
    match u32::try_from(number) {
        Ok(limit) if (1..=max).contains(&limit) => Some(limit),
        _ => {
            problems.push(
                location,
                field,
                format!("invalid value {number}: expected an integer from 1 to {max}"),
            );
            None
        }
    }
}

/// Reads a duration string such as "30s" and rejects zero.
fn duration(
    location: &Location,
    field: &'static str,
    value: Option<toml::Value>,
    problems: &mut Problems,
) -> Option<Duration> {
    let value = value?;
    let Some(text) = value.as_str() else {
        problems.push(
            location,
            field,
            format!(
                "expected a duration string such as \"30s\" (units ms, s, m, h), found {}",
                value.type_str()
            ),
        );
        return None;
    };
    match parse_duration(text) {
        Some(duration) if !duration.is_zero() => Some(duration),
        Some(_) => {
            problems.push(location, field, "must be greater than zero");
            None
        }
        None => {
            problems.push(
                location,
                field,
                format!(
                    "invalid duration \"{text}\": expected a whole number and a unit \
                     (ms, s, m, h), such as \"30s\""
                ),
            );
            None
        }
    }
}

/// Parses a whole number followed by `ms`, `s`, `m` or `h`. Returns `None` for anything else,
/// including values too large for a `Duration`.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let digits_end = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(digits_end);
    if number.is_empty() {
        return None;
    }
    let number: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        "m" => number.checked_mul(60).map(Duration::from_secs),
        "h" => number.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

/// One-based line and column of a byte offset, for syntax errors.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_duration_units() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
    }

    #[test]
    fn rejects_malformed_durations() {
        for text in [
            "30",
            "s",
            "",
            "1.5s",
            "-1s",
            "30 s",
            "5min",
            "1d",
            "99999999999999999999h",
        ] {
            assert_eq!(parse_duration(text), None, "duration {text:?}");
        }
    }

    #[test]
    fn applies_defaults_and_overrides() {
        let config = ProxyConfig::from_toml_str(
            r#"
            idle_timeout = "1m"

            [[route]]
            listen = "vsock:8000"
            upstream = "kms.us-east-1.amazonaws.com:443"

            [[route]]
            listen = "tcp:127.0.0.1:0"
            upstream = "127.0.0.1:9"
            idle_timeout = "5s"
            max_connections = 3
            "#,
        )
        .unwrap();

        assert_eq!(config.max_connections(), DEFAULT_MAX_CONNECTIONS);
        assert_eq!(config.shutdown_timeout(), DEFAULT_SHUTDOWN_TIMEOUT);
        let [first, second] = config.routes() else {
            panic!("expected two routes");
        };
        assert_eq!(first.idle_timeout(), Duration::from_secs(60));
        assert_eq!(first.connect_timeout(), DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(first.max_connections(), None);
        assert_eq!(second.idle_timeout(), Duration::from_secs(5));
        assert_eq!(second.max_connections(), Some(3));
        assert_eq!(second.label(), "route[1] (tcp:127.0.0.1:0)");
    }

    #[test]
    fn reports_syntax_error_position() {
        let error = ProxyConfig::from_toml_str("[[route]]\nlisten = \n").unwrap_err();
        let ConfigError::Syntax { line, .. } = error else {
            panic!("expected a syntax error, got {error}");
        };
        assert_eq!(line, 2);
    }

    #[test]
    fn line_and_column_count_from_one() {
        assert_eq!(line_and_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_and_column("ab\ncd", 4), (2, 2));
    }
}
