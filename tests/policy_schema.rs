//! Keeps `policies/schema.json` and the release policy loader in step: for a table of valid
//! documents and documents with one defect each, the schema's verdict must equal the
//! loader's.
//!
//! Some checks cannot be written in JSON Schema. `LOADER_ONLY_CHECKS` lists them, and
//! `schema_accepts_what_only_the_loader_rejects` pins each one down, so a schema that starts
//! to cover one of them (or a loader that stops) shows up as a failure here.

use std::path::Path;

use enclave_broker::policy::ReleasePolicy;
use jsonschema::Validator;
use serde_json::{Value, json};
use tempfile::TempDir;

const KEY_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
/// A real certificate (the AWS Nitro Enclaves root), since the loader parses dev roots.
const PEM: &str = include_str!("fixtures/nitro/aws_nitro_enclaves_root_g1.pem");

/// Checks that the loader makes and the schema does not, each with a case below.
const LOADER_ONLY_CHECKS: &[&str] = &[
    "secret names are unique across secrets",
    "file targets are unique across secrets",
    "no file target lies inside another secret's file target",
    "env targets are unique across secrets",
    "secrets[].key names a rule defined under keys",
    "ciphertext_file is a readable regular file holding 1 to 6144 bytes",
    "dev_root_pem is a readable regular file containing a PEM certificate",
    "no object repeats a key (serde_json::Value keeps the last one)",
    "base64 has no stray bits after its last byte",
    "max_age_seconds is written without a fraction (JSON Schema counts 300.0 as an integer)",
    "max_age_seconds fits in 64 bits",
];

fn pcr(byte: &str) -> String {
    byte.repeat(48)
}

fn schema_validator() -> Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

/// A folder with the files that the documents below refer to.
fn folder() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/db.kms"), b"\x01\x02\x02\x00blob").unwrap();
    std::fs::write(dir.path().join("secrets/empty.kms"), b"").unwrap();
    std::fs::write(dir.path().join("secrets/large.kms"), vec![1u8; 6145]).unwrap();
    std::fs::create_dir(dir.path().join("sim")).unwrap();
    std::fs::write(dir.path().join("sim/root.pem"), PEM).unwrap();
    std::fs::write(dir.path().join("sim/not-a-cert.pem"), "hello").unwrap();
    nix::unistd::mkfifo(
        &dir.path().join("secrets/fifo.kms"),
        nix::sys::stat::Mode::S_IRWXU,
    )
    .unwrap();
    nix::unistd::mkfifo(
        &dir.path().join("sim/fifo.pem"),
        nix::sys::stat::Mode::S_IRWXU,
    )
    .unwrap();
    dir
}

fn base_policy() -> Value {
    json!({
        "trust": { "roots": ["aws-nitro-enclaves-g1", { "dev_root_pem": "sim/root.pem" }] },
        "keys": {
            "app": {
                "key_id": KEY_ARN,
                "allow": [
                    { "pcrs": { "0": pcr("aa"), "1": pcr("11"), "2": pcr("22"), "8": pcr("88") } },
                    { "pcrs": { "0": pcr("bb") } }
                ],
                "max_age_seconds": 300,
                "allow_debug": false
            },
            "tls": { "key_id": "alias/tls", "allow": [ { "pcrs": { "0": pcr("aa") } } ] }
        },
        "secrets": [
            {
                "name": "DB_PASSWORD",
                "key": "app",
                "ciphertext_file": "secrets/db.kms",
                "encryption_context": { "app": "billing" },
                "env": "DB_PASSWORD"
            },
            {
                "name": "tls-key",
                "key": "tls",
                "ciphertext": "AQIDBA==",
                "encryption_algorithm": "RSAES_OAEP_SHA_256",
                "file": "tls/server.key"
            }
        ]
    })
}

/// The base policy changed by `edit`.
fn with(edit: impl FnOnce(&mut Value)) -> Value {
    let mut policy = base_policy();
    edit(&mut policy);
    policy
}

fn remove(value: &mut Value, field: &str) {
    value.as_object_mut().unwrap().remove(field);
}

fn valid_documents() -> Vec<(&'static str, Value)> {
    vec![
        ("every field", base_policy()),
        ("no trust", with(|p| remove(p, "trust"))),
        ("trust without roots", with(|p| p["trust"] = json!({}))),
        (
            "dev root only",
            with(|p| p["trust"]["roots"] = json!([{ "dev_root_pem": "sim/root.pem" }])),
        ),
        (
            "uppercase PCR",
            with(|p| p["keys"]["app"]["allow"][0]["pcrs"]["8"] = json!(pcr("AB"))),
        ),
        (
            "PCR index 31",
            with(|p| p["keys"]["app"]["allow"][1]["pcrs"]["31"] = json!(pcr("31"))),
        ),
        (
            "all-zero PCR0 with allow_debug",
            with(|p| {
                p["keys"]["app"]["allow_debug"] = json!(true);
                p["keys"]["app"]["allow"][0]["pcrs"]["0"] = json!(pcr("00"));
            }),
        ),
        (
            "all-zero PCR3",
            with(|p| p["keys"]["app"]["allow"][0]["pcrs"]["3"] = json!(pcr("00"))),
        ),
        (
            "PCR2 as the only image PCR",
            with(|p| {
                p["keys"]["app"]["allow"][1]["pcrs"] = json!({ "2": pcr("22"), "4": pcr("44") })
            }),
        ),
        (
            "PCR1 and PCR8, as a baked policy pins",
            with(|p| {
                p["keys"]["app"]["allow"][1]["pcrs"] = json!({ "1": pcr("11"), "8": pcr("88") })
            }),
        ),
        (
            "all-zero PCR8 beside PCR0 with allow_debug",
            with(|p| {
                p["keys"]["app"]["allow_debug"] = json!(true);
                p["keys"]["app"]["allow"][1]["pcrs"]["8"] = json!(pcr("00"));
            }),
        ),
        (
            "alias ARN",
            with(|p| {
                p["keys"]["app"]["key_id"] = json!("arn:aws:kms:eu-west-1:111122223333:alias/app")
            }),
        ),
        (
            "key ID",
            with(|p| p["keys"]["app"]["key_id"] = json!("1234abcd-12ab-34cd-56ef-1234567890ab")),
        ),
        (
            "aws-us-gov ARN",
            with(|p| {
                p["keys"]["app"]["key_id"] = json!(
                    "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef"
                )
            }),
        ),
        (
            "no max_age or allow_debug",
            with(|p| {
                remove(&mut p["keys"]["app"], "max_age_seconds");
                remove(&mut p["keys"]["app"], "allow_debug");
            }),
        ),
        (
            "file and env",
            with(|p| p["secrets"][0]["file"] = json!("db/password")),
        ),
        (
            "file with dotted names",
            with(|p| p["secrets"][1]["file"] = json!(".tls/...key")),
        ),
        (
            "empty encryption context",
            with(|p| p["secrets"][0]["encryption_context"] = json!({})),
        ),
        (
            "SYMMETRIC_DEFAULT",
            with(|p| p["secrets"][1]["encryption_algorithm"] = json!("SYMMETRIC_DEFAULT")),
        ),
        (
            "SM2PKE",
            with(|p| p["secrets"][1]["encryption_algorithm"] = json!("SM2PKE")),
        ),
        (
            "one-byte ciphertext",
            with(|p| p["secrets"][1]["ciphertext"] = json!("AQ==")),
        ),
        (
            "6144-byte ciphertext",
            with(|p| p["secrets"][1]["ciphertext"] = json!("AAAA".repeat(2048))),
        ),
    ]
}

fn invalid_documents() -> Vec<(&'static str, Value)> {
    vec![
        // Top level
        ("document is an array", json!([])),
        ("unknown top-level field", with(|p| p["version"] = json!(1))),
        ("missing keys", with(|p| remove(p, "keys"))),
        ("missing secrets", with(|p| remove(p, "secrets"))),
        // Trust roots
        (
            "trust is a list",
            with(|p| p["trust"] = json!(["aws-nitro-enclaves-g1"])),
        ),
        (
            "unknown trust field",
            with(|p| p["trust"]["pinned"] = json!(true)),
        ),
        ("empty roots", with(|p| p["trust"]["roots"] = json!([]))),
        (
            "roots is a string",
            with(|p| p["trust"]["roots"] = json!("aws-nitro-enclaves-g1")),
        ),
        (
            "unknown root name",
            with(|p| p["trust"]["roots"][0] = json!("aws-nitro-enclaves-g2")),
        ),
        (
            "repeated root",
            with(|p| p["trust"]["roots"][1] = json!("aws-nitro-enclaves-g1")),
        ),
        (
            "root is a number",
            with(|p| p["trust"]["roots"][0] = json!(1)),
        ),
        (
            "dev root with extra field",
            with(|p| p["trust"]["roots"][1]["sha256"] = json!("00")),
        ),
        (
            "dev root without path",
            with(|p| p["trust"]["roots"][1] = json!({})),
        ),
        (
            "empty dev root path",
            with(|p| p["trust"]["roots"][1]["dev_root_pem"] = json!("")),
        ),
        (
            "dev root path with NUL",
            with(|p| p["trust"]["roots"][1]["dev_root_pem"] = json!("sim/\u{0}root.pem")),
        ),
        (
            "dev root path is a number",
            with(|p| p["trust"]["roots"][1]["dev_root_pem"] = json!(7)),
        ),
        // Key rules
        ("keys is a list", with(|p| p["keys"] = json!([]))),
        ("keys is empty", with(|p| p["keys"] = json!({}))),
        (
            "rule name with a dot",
            with(|p| p["keys"]["app.v2"] = p["keys"]["app"].clone()),
        ),
        (
            "rule is a string",
            with(|p| p["keys"]["tls"] = json!("alias/tls")),
        ),
        (
            "unknown rule field",
            with(|p| p["keys"]["app"]["alow"] = json!([])),
        ),
        (
            "missing key_id",
            with(|p| remove(&mut p["keys"]["app"], "key_id")),
        ),
        (
            "empty key_id",
            with(|p| p["keys"]["app"]["key_id"] = json!("")),
        ),
        (
            "key_id is a number",
            with(|p| p["keys"]["app"]["key_id"] = json!(1)),
        ),
        (
            "ARN with 11-digit account",
            with(|p| {
                p["keys"]["app"]["key_id"] = json!("arn:aws:kms:us-east-1:11112222333:key/abcd")
            }),
        ),
        (
            "ARN with region typo",
            with(|p| {
                p["keys"]["app"]["key_id"] = json!("arn:aws:kms:us-east1:111122223333:key/abcd")
            }),
        ),
        (
            "ARN of S3",
            with(|p| {
                p["keys"]["app"]["key_id"] = json!("arn:aws:s3:us-east-1:111122223333:key/abcd")
            }),
        ),
        (
            "ARN of other partition",
            with(|p| {
                p["keys"]["app"]["key_id"] = json!("arn:azure:kms:us-east-1:111122223333:key/abcd")
            }),
        ),
        (
            "ARN without key ID",
            with(|p| p["keys"]["app"]["key_id"] = json!("arn:aws:kms:us-east-1:111122223333:key/")),
        ),
        (
            "ARN with other resource",
            with(|p| {
                p["keys"]["app"]["key_id"] = json!("arn:aws:kms:us-east-1:111122223333:grant/abcd")
            }),
        ),
        (
            "empty alias",
            with(|p| p["keys"]["app"]["key_id"] = json!("alias/")),
        ),
        (
            "alias with a space",
            with(|p| p["keys"]["app"]["key_id"] = json!("alias/my app")),
        ),
        (
            "alias of 257 characters",
            with(|p| p["keys"]["app"]["key_id"] = json!(format!("alias/{}", "a".repeat(251)))),
        ),
        (
            "key ID with a space",
            with(|p| p["keys"]["app"]["key_id"] = json!("my key")),
        ),
        (
            "missing allow",
            with(|p| remove(&mut p["keys"]["app"], "allow")),
        ),
        (
            "empty allow",
            with(|p| p["keys"]["app"]["allow"] = json!([])),
        ),
        (
            "allow is an object",
            with(|p| p["keys"]["app"]["allow"] = json!({ "pcrs": { "0": pcr("aa") } })),
        ),
        (
            "unknown allow entry field",
            with(|p| p["keys"]["app"]["allow"][1]["image_sha384"] = json!(pcr("aa"))),
        ),
        (
            "allow entry without pcrs",
            with(|p| p["keys"]["app"]["allow"][1] = json!({})),
        ),
        (
            "empty pcrs",
            with(|p| p["keys"]["app"]["allow"][1]["pcrs"] = json!({})),
        ),
        (
            "pcrs is a list",
            with(|p| p["keys"]["app"]["allow"][1]["pcrs"] = json!([pcr("aa")])),
        ),
        (
            "PCR index 32",
            with(|p| p["keys"]["app"]["allow"][1]["pcrs"]["32"] = json!(pcr("aa"))),
        ),
        (
            "PCR index 08",
            with(|p| p["keys"]["app"]["allow"][1]["pcrs"]["08"] = json!(pcr("aa"))),
        ),
        (
            "PCR index -1",
            with(|p| p["keys"]["app"]["allow"][1]["pcrs"]["-1"] = json!(pcr("aa"))),
        ),
        (
            "PCR index PCR0",
            with(|p| p["keys"]["app"]["allow"][1]["pcrs"]["PCR0"] = json!(pcr("aa"))),
        ),
        (
            "PCR with 0x prefix",
            with(|p| p["keys"]["app"]["allow"][1]["pcrs"]["0"] = json!(format!("0x{}", pcr("bb")))),
        ),
        (
            "SHA-256 sized PCR",
            with(|p| p["keys"]["app"]["allow"][1]["pcrs"]["0"] = json!("bb".repeat(32))),
        ),
        (
            "short PCR 000000",
            with(|p| p["keys"]["app"]["allow"][1]["pcrs"]["0"] = json!("000000")),
        ),
        (
            "PCR with trailing newline",
            with(|p| p["keys"]["app"]["allow"][1]["pcrs"]["0"] = json!(format!("{}\n", pcr("bb")))),
        ),
        (
            "PCR with leading space",
            with(|p| {
                p["keys"]["app"]["allow"][1]["pcrs"]["0"] = json!(format!(" {}", &pcr("bb")[1..]))
            }),
        ),
        (
            "PCR with non-hex digit",
            with(|p| {
                p["keys"]["app"]["allow"][1]["pcrs"]["0"] = json!(format!("{}gg", "bb".repeat(47)))
            }),
        ),
        (
            "PCR is a number",
            with(|p| p["keys"]["app"]["allow"][1]["pcrs"]["0"] = json!(0)),
        ),
        (
            "all-zero PCR0",
            with(|p| p["keys"]["app"]["allow"][0]["pcrs"]["0"] = json!(pcr("00"))),
        ),
        (
            "entry pinning only PCR5",
            with(|p| p["keys"]["app"]["allow"][1]["pcrs"] = json!({ "5": pcr("00") })),
        ),
        (
            "entry pinning only parent PCRs",
            with(|p| {
                p["keys"]["app"]["allow"][1]["pcrs"] = json!({ "3": pcr("33"), "4": pcr("44") })
            }),
        ),
        (
            "entry pinning only PCR1",
            with(|p| p["keys"]["app"]["allow"][1]["pcrs"] = json!({ "1": pcr("11") })),
        ),
        (
            "all-zero PCR8",
            with(|p| p["keys"]["app"]["allow"][0]["pcrs"]["8"] = json!(pcr("00"))),
        ),
        (
            "all-zero PCR8 as only image PCR with allow_debug",
            with(|p| {
                p["keys"]["app"]["allow_debug"] = json!(true);
                p["keys"]["app"]["allow"][1]["pcrs"] = json!({ "4": pcr("44"), "8": pcr("00") });
            }),
        ),
        (
            "all-zero PCR1",
            with(|p| p["keys"]["app"]["allow"][0]["pcrs"]["1"] = json!(pcr("00"))),
        ),
        (
            "all-zero PCR2 in second entry",
            with(|p| p["keys"]["app"]["allow"][1]["pcrs"]["2"] = json!(pcr("00"))),
        ),
        (
            "all-zero PCR0 without allow_debug",
            with(|p| {
                remove(&mut p["keys"]["app"], "allow_debug");
                p["keys"]["app"]["allow"][0]["pcrs"]["0"] = json!(pcr("00"));
            }),
        ),
        (
            "max_age 0",
            with(|p| p["keys"]["app"]["max_age_seconds"] = json!(0)),
        ),
        (
            "negative max_age",
            with(|p| p["keys"]["app"]["max_age_seconds"] = json!(-1)),
        ),
        (
            "fractional max_age",
            with(|p| p["keys"]["app"]["max_age_seconds"] = json!(1.5)),
        ),
        (
            "max_age as string",
            with(|p| p["keys"]["app"]["max_age_seconds"] = json!("300")),
        ),
        (
            "allow_debug as string",
            with(|p| p["keys"]["app"]["allow_debug"] = json!("false")),
        ),
        // Secrets
        ("secrets is an object", with(|p| p["secrets"] = json!({}))),
        ("empty secrets", with(|p| p["secrets"] = json!([]))),
        (
            "secret is a string",
            with(|p| p["secrets"][1] = json!("tls-key")),
        ),
        (
            "unknown secret field",
            with(|p| p["secrets"][1]["mode"] = json!("0400")),
        ),
        (
            "missing name",
            with(|p| remove(&mut p["secrets"][1], "name")),
        ),
        ("empty name", with(|p| p["secrets"][1]["name"] = json!(""))),
        (
            "name with newline",
            with(|p| p["secrets"][1]["name"] = json!("tls\nkey")),
        ),
        ("missing key", with(|p| remove(&mut p["secrets"][1], "key"))),
        (
            "key is a number",
            with(|p| p["secrets"][1]["key"] = json!(1)),
        ),
        (
            "ciphertext and ciphertext_file",
            with(|p| p["secrets"][0]["ciphertext"] = json!("AQIDBA==")),
        ),
        (
            "no ciphertext",
            with(|p| remove(&mut p["secrets"][1], "ciphertext")),
        ),
        (
            "empty ciphertext",
            with(|p| p["secrets"][1]["ciphertext"] = json!("")),
        ),
        (
            "unpadded base64",
            with(|p| p["secrets"][1]["ciphertext"] = json!("AQIDBA")),
        ),
        (
            "url-safe base64",
            with(|p| p["secrets"][1]["ciphertext"] = json!("AQ-_BA==")),
        ),
        (
            "base64 with a space",
            with(|p| p["secrets"][1]["ciphertext"] = json!("AQID BA==")),
        ),
        (
            "base64 with a newline",
            with(|p| p["secrets"][1]["ciphertext"] = json!("AQID\nBA==")),
        ),
        (
            "6145-byte ciphertext",
            with(|p| p["secrets"][1]["ciphertext"] = json!(format!("{}AQ==", "AAAA".repeat(2048)))),
        ),
        (
            "ciphertext is a number",
            with(|p| p["secrets"][1]["ciphertext"] = json!(1234)),
        ),
        (
            "empty ciphertext_file",
            with(|p| p["secrets"][0]["ciphertext_file"] = json!("")),
        ),
        (
            "encryption_context is a list",
            with(|p| p["secrets"][0]["encryption_context"] = json!(["app"])),
        ),
        (
            "encryption_context with number",
            with(|p| p["secrets"][0]["encryption_context"]["n"] = json!(1)),
        ),
        (
            "algorithm RSAES_OAEP_SHA256",
            with(|p| p["secrets"][1]["encryption_algorithm"] = json!("RSAES_OAEP_SHA256")),
        ),
        (
            "algorithm in lower case",
            with(|p| p["secrets"][1]["encryption_algorithm"] = json!("rsaes_oaep_sha_256")),
        ),
        (
            "algorithm is null",
            with(|p| p["secrets"][1]["encryption_algorithm"] = json!(null)),
        ),
        (
            "no file or env",
            with(|p| remove(&mut p["secrets"][0], "env")),
        ),
        (
            "file with ..",
            with(|p| p["secrets"][1]["file"] = json!("tls/../../etc/shadow")),
        ),
        (
            "file is ..",
            with(|p| p["secrets"][1]["file"] = json!("..")),
        ),
        (
            "absolute file",
            with(|p| p["secrets"][1]["file"] = json!("/etc/shadow")),
        ),
        ("empty file", with(|p| p["secrets"][1]["file"] = json!(""))),
        (
            "file with . segment",
            with(|p| p["secrets"][1]["file"] = json!("./tls.key")),
        ),
        (
            "file with doubled /",
            with(|p| p["secrets"][1]["file"] = json!("tls//server.key")),
        ),
        (
            "file with trailing /",
            with(|p| p["secrets"][1]["file"] = json!("tls/")),
        ),
        (
            "file with newline",
            with(|p| p["secrets"][1]["file"] = json!("tls\nkey")),
        ),
        (
            "file with tab in second segment",
            with(|p| p["secrets"][1]["file"] = json!("tls/\tkey")),
        ),
        (
            "file with DEL",
            with(|p| p["secrets"][1]["file"] = json!("tls\u{7f}")),
        ),
        (
            "env is PATH",
            with(|p| p["secrets"][0]["env"] = json!("PATH")),
        ),
        (
            "env is LD_PRELOAD",
            with(|p| p["secrets"][0]["env"] = json!("LD_PRELOAD")),
        ),
        (
            "file with NUL",
            with(|p| p["secrets"][1]["file"] = json!("tls\u{0}key")),
        ),
        (
            "file is a number",
            with(|p| p["secrets"][1]["file"] = json!(1)),
        ),
        (
            "env with -",
            with(|p| p["secrets"][0]["env"] = json!("DB-PASSWORD")),
        ),
        (
            "env starting with a digit",
            with(|p| p["secrets"][0]["env"] = json!("1DB")),
        ),
        ("empty env", with(|p| p["secrets"][0]["env"] = json!(""))),
        (
            "env is null",
            with(|p| p["secrets"][0]["env"] = json!(null)),
        ),
    ]
}

/// Documents the loader rejects while the schema accepts them, each labelled with the entry
/// of `LOADER_ONLY_CHECKS` it exercises. Given as text so that repeated keys survive.
fn loader_only_documents() -> Vec<(&'static str, String)> {
    let [
        names,
        files,
        nested,
        envs,
        reference,
        ciphertext_file,
        dev_root,
        repeated_key,
        base64,
        fraction,
        range,
    ] = LOADER_ONLY_CHECKS
    else {
        panic!("LOADER_ONLY_CHECKS changed; update the cases below");
    };
    let text = |policy: Value| policy.to_string();
    let max_age = |replacement: &str| {
        base_policy()
            .to_string()
            .replacen("\"max_age_seconds\":300", replacement, 1)
    };
    vec![
        (
            names,
            text(with(|p| p["secrets"][1]["name"] = json!("DB_PASSWORD"))),
        ),
        (
            files,
            text(with(|p| p["secrets"][0]["file"] = json!("tls/server.key"))),
        ),
        (
            nested,
            text(with(|p| p["secrets"][0]["file"] = json!("tls"))),
        ),
        (
            envs,
            text(with(|p| p["secrets"][1]["env"] = json!("DB_PASSWORD"))),
        ),
        (
            reference,
            text(with(|p| p["secrets"][1]["key"] = json!("tsl"))),
        ),
        (
            ciphertext_file,
            text(with(|p| {
                p["secrets"][0]["ciphertext_file"] = json!("secrets/missing.kms")
            })),
        ),
        (
            ciphertext_file,
            text(with(|p| {
                p["secrets"][0]["ciphertext_file"] = json!("secrets/empty.kms")
            })),
        ),
        (
            ciphertext_file,
            text(with(|p| {
                p["secrets"][0]["ciphertext_file"] = json!("secrets/large.kms")
            })),
        ),
        (
            ciphertext_file,
            text(with(|p| {
                p["secrets"][0]["ciphertext_file"] = json!("secrets/fifo.kms")
            })),
        ),
        (
            dev_root,
            text(with(|p| {
                p["trust"]["roots"][1]["dev_root_pem"] = json!("sim/fifo.pem")
            })),
        ),
        (
            dev_root,
            text(with(|p| {
                p["trust"]["roots"][1]["dev_root_pem"] = json!("sim/missing.pem")
            })),
        ),
        (
            dev_root,
            text(with(|p| {
                p["trust"]["roots"][1]["dev_root_pem"] = json!("sim/not-a-cert.pem")
            })),
        ),
        (
            repeated_key,
            max_age("\"max_age_seconds\":300,\"max_age_seconds\":300"),
        ),
        (
            base64,
            text(with(|p| p["secrets"][1]["ciphertext"] = json!("AR=="))),
        ),
        (fraction, max_age("\"max_age_seconds\":300.0")),
        (range, max_age("\"max_age_seconds\":18446744073709551616")),
    ]
}

fn loader_accepts(text: &str, dir: &Path) -> bool {
    ReleasePolicy::from_json_str(text, dir).is_ok()
}

#[test]
fn schema_is_valid_draft_2020_12() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::meta::validate(&schema).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

fn schema_errors(validator: &Validator, document: &Value) -> Vec<String> {
    validator
        .iter_errors(document)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect()
}

/// Fails with every disagreement at once, so one run shows all the cases to fix.
fn assert_no_disagreements(disagreements: Vec<String>) {
    assert!(
        disagreements.is_empty(),
        "{} disagreement(s):\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

#[test]
fn schema_and_loader_accept_valid_documents() {
    let validator = schema_validator();
    let dir = folder();
    let mut disagreements = Vec::new();
    for (label, document) in valid_documents() {
        if let Err(error) = ReleasePolicy::from_json_str(&document.to_string(), dir.path()) {
            disagreements.push(format!("{label}: loader rejected it: {error}"));
        }
        let errors = schema_errors(&validator, &document);
        if !errors.is_empty() {
            disagreements.push(format!("{label}: schema rejected it: {errors:?}"));
        }
    }
    assert_no_disagreements(disagreements);
}

#[test]
fn schema_and_loader_reject_each_single_defect() {
    let validator = schema_validator();
    let dir = folder();
    let mut disagreements = Vec::new();
    for (label, document) in invalid_documents() {
        if loader_accepts(&document.to_string(), dir.path()) {
            disagreements.push(format!("{label}: loader accepted it"));
        }
        if validator.is_valid(&document) {
            disagreements.push(format!("{label}: schema accepted it"));
        }
    }
    assert_no_disagreements(disagreements);
}

#[test]
fn schema_accepts_what_only_the_loader_rejects() {
    let validator = schema_validator();
    let dir = folder();
    let cases = loader_only_documents();
    let mut disagreements = Vec::new();
    for check in LOADER_ONLY_CHECKS {
        if !cases.iter().any(|(covered, _)| covered == check) {
            disagreements.push(format!("no case for loader-only check {check:?}"));
        }
    }
    for (check, text) in cases {
        if loader_accepts(&text, dir.path()) {
            disagreements.push(format!("{check}: loader accepted {text}"));
        }
        let document: Value = serde_json::from_str(&text).unwrap();
        let errors = schema_errors(&validator, &document);
        if !errors.is_empty() {
            disagreements.push(format!(
                "{check}: schema now rejects it, so move the case to invalid_documents: {errors:?}"
            ));
        }
    }
    assert_no_disagreements(disagreements);
}

#[test]
fn example_policy_satisfies_schema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/example.json");
    let document: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let errors = schema_errors(&schema_validator(), &document);
    assert!(errors.is_empty(), "{errors:#?}");
}
