//! Release-policy loading: JSON text checked field by field, with relative file paths
//! (`dev_root_pem`, `ciphertext_file`) resolved against a fixed folder that holds a PEM
//! certificate and a ciphertext file under the names the seeds use.
//!
//! The loader reads any file a policy names, so input with a string that could leave that
//! folder (an absolute path or a `..` component) is skipped: `/dev/zero` or `/dev/stdin`
//! would exhaust memory or block the run. Every string is checked, keys and duplicates
//! included, because the loader and `serde_json::Value` disagree on which duplicate counts.
#![no_main]

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use enclave_broker::policy::{Decision, ReleasePolicy, evaluate};
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};

const ROOT_PEM: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/nitro/aws_nitro_enclaves_root_g1.pem"
));

/// Creates (once per process) the folder that relative policy paths resolve against. It sits
/// under the fuzz crate's target folder, so repeated runs reuse it instead of leaving
/// temporary folders behind (libFuzzer exits without running destructors).
fn base_dir() -> &'static Path {
    static BASE_DIR: OnceLock<PathBuf> = OnceLock::new();
    BASE_DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/policy_load_base");
        std::fs::create_dir_all(dir.join("sim")).expect("create the policy base folder");
        std::fs::create_dir_all(dir.join("secrets")).expect("create the policy base folder");
        std::fs::write(dir.join("sim/root.pem"), ROOT_PEM).expect("write sim/root.pem");
        std::fs::write(
            dir.join("secrets/db-password.kms"),
            [0x01, 0x02, 0x02, 0x00, 0x78],
        )
        .expect("write a ciphertext file");
        std::fs::write(
            dir.join("secrets/api-token.kms"),
            [0x01, 0x02, 0x02, 0x00, 0x79],
        )
        .expect("write a ciphertext file");
        std::fs::write(dir.join("secrets/empty.kms"), []).expect("write an empty file");
        dir
    })
}

/// True when some JSON string in `text` is absolute or has a `..` component.
fn names_path_outside_base(text: &str) -> bool {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let mut found = false;
    // Text that is not JSON never reaches a file read, so a parse error here is harmless.
    let _ = deserializer.deserialize_any(PathFinder { found: &mut found });
    found
}

/// Walks a JSON value and sets `found` on a string that could name a file outside the base
/// folder.
struct PathFinder<'a> {
    found: &'a mut bool,
}

impl PathFinder<'_> {
    fn check(&mut self, text: &str) {
        let path = Path::new(text);
        if path.is_absolute() || path.components().any(|part| part.as_os_str() == "..") {
            *self.found = true;
        }
    }
}

impl<'de> Visitor<'de> for PathFinder<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(mut self, text: &str) -> Result<(), E> {
        self.check(text);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        while items
            .next_element_seed(Seed {
                found: &mut *self.found,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut members: A) -> Result<(), A::Error> {
        while let Some(key) = members.next_key::<String>()? {
            self.check(&key);
            members.next_value_seed(Seed {
                found: &mut *self.found,
            })?;
        }
        Ok(())
    }
}

/// Lets [`PathFinder`] walk nested values.
struct Seed<'a> {
    found: &'a mut bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for Seed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(PathFinder { found: self.found })
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if names_path_outside_base(text) {
        return;
    }

    let policy = match ReleasePolicy::from_json_str(text, base_dir()) {
        Ok(policy) => policy,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };

    // Every allow entry lists at least one PCR, and a PCR the document lacks never matches,
    // so an enclave without PCRs is denied by every rule of a policy that loaded.
    for (name, rule) in policy.keys() {
        let decision = evaluate(name, rule, &BTreeMap::new(), false);
        assert!(
            matches!(decision, Decision::Deny(_)),
            "rule {name} allows a document without PCRs"
        );
    }
    for secret in policy.secrets() {
        assert!(policy.key_rule(secret.key()).is_some());
    }
});
