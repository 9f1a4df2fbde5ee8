//! Proxy configuration loading: TOML text turned into validated routes, with error messages
//! that point at a line and column of the input.
#![no_main]

use enclave_broker::proxy::ProxyConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ProxyConfig::from_toml_str(text) {
        Ok(config) => {
            assert!(
                !config.routes().is_empty(),
                "a configuration without routes loaded"
            );
            assert!(config.max_connections() > 0);
            assert!(!config.shutdown_timeout().is_zero());
            assert!(!config.dns_refresh_interval().is_zero());
            for route in config.routes() {
                let _ = route.label();
                assert!(!route.connect_timeout().is_zero());
                assert!(!route.idle_timeout().is_zero());
                if let Some(limit) = route.max_connections() {
                    assert!(
                        limit > 0,
                        "route {} loaded with max_connections 0",
                        route.label()
                    );
                }
            }
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
