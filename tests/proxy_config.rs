//! The proxy configuration is rejected whole, with each problem naming its route (index and
//! listen value) and field.

use std::time::Duration;

use enclave_broker::proxy::{ConfigError, ListenAddr, ProxyConfig, ProxyError};

/// Parses `toml`, expecting it to be invalid, and returns the message.
fn rejection(toml: &str) -> String {
    match ProxyConfig::from_toml_str(toml) {
        Ok(_) => panic!("configuration accepted:\n{toml}"),
        Err(error) => error.to_string(),
    }
}

fn route(listen: &str, upstream: &str) -> String {
    format!("[[route]]\nlisten = \"{listen}\"\nupstream = \"{upstream}\"\n")
}

#[test]
fn duplicate_listener_names_both_routes() {
    let toml = [
        route("vsock:8000", "kms.us-east-1.amazonaws.com:443"),
        route("vsock:8002", "169.254.169.254:80"),
        route("vsock:8000", "sts.us-east-1.amazonaws.com:443"),
    ]
    .concat();
    let message = rejection(&toml);
    assert!(
        message.contains(
            "route[2] (listen \"vsock:8000\") listen: \"vsock:8000\" is already used by route[0]"
        ),
        "{message}"
    );
}

#[test]
fn tcp_port_zero_routes_are_not_duplicates() {
    let toml = [
        route("tcp:127.0.0.1:0", "127.0.0.1:9"),
        route("tcp:127.0.0.1:0", "127.0.0.1:9"),
    ]
    .concat();
    let config = ProxyConfig::from_toml_str(&toml).unwrap();
    assert_eq!(config.routes().len(), 2);
}

#[test]
fn bad_upstreams_name_route_and_field() {
    let cases = [
        ("kms.us-east-1.amazonaws.com", "missing port"),
        ("kms.us-east-1.amazonaws.com:0", "port 0"),
        (":443", "empty host"),
        (
            "https://kms.us-east-1.amazonaws.com:443",
            "without a scheme",
        ),
        ("kms.us-east-1.amazonaws.com:99999", "from 1 to 65535"),
    ];
    for (upstream, reason) in cases {
        let toml = [
            route("vsock:8000", "169.254.169.254:80"),
            route("vsock:8001", upstream),
        ]
        .concat();
        let message = rejection(&toml);
        let expected =
            format!("route[1] (listen \"vsock:8001\") upstream: invalid value \"{upstream}\"");
        assert!(message.contains(&expected), "{message}");
        assert!(message.contains(reason), "upstream {upstream:?}: {message}");
    }
}

#[test]
fn bad_listen_syntax_names_route_and_field() {
    for listen in [
        "8000",
        "vsock:0",
        "vsock:x",
        "tcp:localhost:80",
        "unix:/run/proxy.sock",
    ] {
        let message = rejection(&route(listen, "169.254.169.254:80"));
        let expected = format!("route[0] (listen \"{listen}\") listen: invalid value \"{listen}\"");
        assert!(message.contains(&expected), "{message}");
    }
}

#[test]
fn unknown_route_field_names_route() {
    let toml = format!(
        "{}dial_timeout = \"5s\"\n",
        route("vsock:8000", "169.254.169.254:80")
    );
    let message = rejection(&toml);
    assert!(
        message.contains("route[0] (listen \"vsock:8000\")"),
        "{message}"
    );
    assert!(
        message.contains("unknown field `dial_timeout`"),
        "{message}"
    );
}

#[test]
fn unknown_top_level_field_rejected() {
    let toml = format!(
        "shutdown_grace = \"5s\"\n{}",
        route("vsock:8000", "169.254.169.254:80")
    );
    let error = ProxyConfig::from_toml_str(&toml).expect_err("must be rejected");
    assert!(
        matches!(error, ConfigError::Syntax { line: 1, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("unknown field `shutdown_grace`"),
        "{error}"
    );
}

#[test]
fn zero_limits_name_field() {
    let toml = format!(
        "max_connections = 0\nshutdown_timeout = \"0s\"\n{}max_connections = 0\nidle_timeout = \"0ms\"\nconnect_timeout = \"0s\"\n",
        route("vsock:8000", "169.254.169.254:80")
    );
    let message = rejection(&toml);
    let expected = [
        "max_connections: invalid value 0",
        "shutdown_timeout: must be greater than zero",
        "route[0] (listen \"vsock:8000\") max_connections: invalid value 0",
        "route[0] (listen \"vsock:8000\") idle_timeout: must be greater than zero",
        "route[0] (listen \"vsock:8000\") connect_timeout: must be greater than zero",
    ];
    for part in expected {
        assert!(message.contains(part), "missing {part:?} in {message}");
    }
}

#[test]
fn duration_without_unit_rejected_with_hint() {
    let toml = format!(
        "{}idle_timeout = 30\n",
        route("vsock:8000", "169.254.169.254:80")
    );
    let message = rejection(&toml);
    assert!(
        message.contains("route[0] (listen \"vsock:8000\") idle_timeout: expected a duration string such as \"30s\""),
        "{message}"
    );
}

#[test]
fn missing_fields_and_routes_rejected() {
    let message = rejection("[[route]]\nlisten = \"vsock:8000\"\n");
    assert!(
        message.contains("route[0] (listen \"vsock:8000\") upstream: missing"),
        "{message}"
    );

    let message = rejection("[[route]]\nupstream = \"169.254.169.254:80\"\n");
    assert!(message.contains("route[0] listen: missing"), "{message}");

    let message = rejection("shutdown_timeout = \"5s\"\n");
    assert!(message.contains("no [[route]] entries"), "{message}");
}

#[test]
fn every_problem_is_reported() {
    let toml = [
        route("vsock:8000", "no-port.example"),
        route("vsock:8000", "169.254.169.254:0"),
    ]
    .concat();
    let error = ProxyConfig::from_toml_str(&toml).expect_err("must be rejected");
    let ConfigError::Invalid { problems, .. } = &error else {
        panic!("expected an invalid configuration, got {error}");
    };
    assert_eq!(problems.len(), 2, "{error}");
    assert!(problems[0].to_string().starts_with("route[0]"), "{error}");
    assert!(problems[1].to_string().starts_with("route[1]"), "{error}");
}

#[test]
fn config_errors_exit_with_code_2() {
    let error = ProxyConfig::from_toml_str("").expect_err("must be rejected");
    assert_eq!(ProxyError::from(error).exit_code(), 2);

    let missing = tempfile::tempdir().unwrap().path().join("absent.toml");
    let error = ProxyConfig::load(&missing).expect_err("must be rejected");
    assert!(matches!(error, ConfigError::Read { .. }), "{error}");
    assert!(error.to_string().contains("absent.toml"), "{error}");
    assert_eq!(ProxyError::from(error).exit_code(), 2);
}

#[test]
fn load_names_file_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, route("vsock:8000", "kms.amazonaws.com")).unwrap();
    let error = ProxyConfig::load(&path).expect_err("must be rejected");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

#[test]
fn sample_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/proxy.toml");
    let config = ProxyConfig::load(path.as_ref()).unwrap();

    let routes = config.routes();
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0].listen(), &ListenAddr::Vsock { port: 8000 });
    assert_eq!(
        routes[0].upstream().to_string(),
        "kms.us-east-1.amazonaws.com:443"
    );
    assert_eq!(routes[1].listen(), &ListenAddr::Vsock { port: 8002 });
    assert_eq!(routes[1].upstream().to_string(), "169.254.169.254:80");
    assert!(config.shutdown_timeout() > Duration::ZERO);
}

#[test]
fn upstream_equal_to_own_listener_rejected() {
    let toml = [
        route("tcp:127.0.0.1:8443", "127.0.0.1:8443"),
        route("tcp:127.0.0.1:9000", "kms.us-east-1.amazonaws.com:443"),
    ]
    .concat();

    let message = rejection(&toml);

    assert!(
        message.contains("route[0] (listen \"tcp:127.0.0.1:8443\") upstream: \"127.0.0.1:8443\""),
        "{message}"
    );
    assert!(message.contains("own listener"), "{message}");
    assert!(!message.contains("route[1]"), "{message}");
}

#[test]
fn upstream_pointing_at_another_routes_listener_rejected() {
    let toml = [
        route("tcp:0.0.0.0:8443", "kms.us-east-1.amazonaws.com:443"),
        route("tcp:127.0.0.1:9000", "localhost:8443"),
        route("tcp:[::1]:9001", "[::1]:9000"),
    ]
    .concat();

    let message = rejection(&toml);

    assert!(
        message.contains(
            "route[1] (listen \"tcp:127.0.0.1:9000\") upstream: \"localhost:8443\" is the \
             proxy's own listener tcp:0.0.0.0:8443 (route[0])"
        ),
        "{message}"
    );
    // [::1]:9000 is not where route[1] listens (127.0.0.1:9000), so route[2] is valid.
    assert!(!message.contains("route[2]"), "{message}");
}

#[test]
fn other_spellings_of_own_listener_rejected() {
    // The message shows the upstream as parsed, so an IPv6 address in its standard form.
    for (upstream, shown) in [
        ("[::ffff:127.0.0.1]:8443", "[::ffff:127.0.0.1]:8443"),
        ("0.0.0.0:8443", "0.0.0.0:8443"),
        ("127.1:8443", "127.1:8443"),
        ("[::ffff:7f00:1]:8443", "[::ffff:127.0.0.1]:8443"),
    ] {
        let toml = route("tcp:127.0.0.1:8443", upstream);

        let message = rejection(&toml);

        assert!(
            message.contains(&format!(
                "route[0] (listen \"tcp:127.0.0.1:8443\") upstream: \"{shown}\" is the \
                 proxy's own listener tcp:127.0.0.1:8443 (route[0])"
            )),
            "{message}"
        );
    }
}

#[test]
fn upstream_on_same_port_of_other_host_accepted() {
    let toml = [
        route("tcp:127.0.0.1:8443", "10.0.0.5:8443"),
        route("tcp:127.0.0.1:0", "127.0.0.1:9"),
    ]
    .concat();

    let config = ProxyConfig::from_toml_str(&toml).unwrap();

    assert_eq!(config.routes().len(), 2);
}

#[test]
fn route_limit_above_top_level_limit_rejected() {
    let explicit = format!(
        "max_connections = 10\n{}max_connections = 11\n",
        route("tcp:127.0.0.1:8443", "10.0.0.5:443")
    );
    let default = format!(
        "{}max_connections = 1025\n",
        route("tcp:127.0.0.1:8443", "10.0.0.5:443")
    );

    let explicit_message = rejection(&explicit);
    let default_message = rejection(&default);

    assert!(
        explicit_message.contains(
            "route[0] (listen \"tcp:127.0.0.1:8443\") max_connections: invalid value 11: above \
             the top-level max_connections (10)"
        ),
        "{explicit_message}"
    );
    assert!(
        default_message.contains("above the top-level max_connections (1024, the default)"),
        "{default_message}"
    );
}

#[test]
fn route_limit_equal_to_top_level_limit_accepted() {
    let toml = format!(
        "max_connections = 10\n{}max_connections = 10\n",
        route("tcp:127.0.0.1:8443", "10.0.0.5:443")
    );

    let config = ProxyConfig::from_toml_str(&toml).unwrap();

    assert_eq!(config.routes()[0].max_connections(), Some(10));
}
