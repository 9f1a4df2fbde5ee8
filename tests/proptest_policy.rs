//! Properties of the release decision ([`policy::evaluate`]): a key rule denies whenever any
//! PCR it lists differs from the document's or is missing, and allows through the first allow
//! entry whose listed PCRs all match.

use std::collections::BTreeMap;
use std::path::Path;

use enclave_broker::attestation::pcr::{PcrIndex, PcrValue};
use enclave_broker::policy::{self, Decision, DenialReason, KeyRule, ReleasePolicy};
use proptest::prelude::*;
use serde_json::json;

type Pcrs = BTreeMap<u8, [u8; 48]>;

/// Loads a key rule named `app` whose allow entries list `entries`.
fn key_rule(entries: &[Pcrs], allow_debug: bool) -> KeyRule {
    let allow: Vec<serde_json::Value> = entries
        .iter()
        .map(|pcrs| {
            let pcrs: serde_json::Map<String, serde_json::Value> = pcrs
                .iter()
                .map(|(index, value)| (index.to_string(), json!(hex::encode(value))))
                .collect();
            json!({ "pcrs": pcrs })
        })
        .collect();
    let document = json!({
        "keys": { "app": { "key_id": "alias/app", "allow": allow, "allow_debug": allow_debug } },
        "secrets": [ { "name": "db", "key": "app", "ciphertext": "AQID", "env": "DB" } ],
    });
    let policy = ReleasePolicy::from_json_str(&document.to_string(), Path::new(".")).unwrap();
    policy.key_rule("app").unwrap().clone()
}

/// Converts test PCRs into the document form [`policy::evaluate`] takes.
fn document_pcrs(pcrs: &Pcrs) -> BTreeMap<PcrIndex, PcrValue> {
    pcrs.iter()
        .map(|(index, value)| {
            (
                PcrIndex::new(u64::from(*index)).unwrap(),
                PcrValue::from_bytes(value).unwrap(),
            )
        })
        .collect()
}

/// Generates one allow entry: 1 to 8 PCRs with random values, one of them PCR0, PCR2 or
/// PCR8, since the loader rejects entries that pin no image.
fn allow_entry() -> impl Strategy<Value = Pcrs> {
    (
        proptest::collection::btree_map(0u8..=31, any::<[u8; 48]>(), 0..=7),
        proptest::sample::select(vec![0u8, 2, 8]),
        any::<[u8; 48]>(),
    )
        .prop_map(|(mut pcrs, image_index, image_value)| {
            pcrs.insert(image_index, image_value);
            pcrs
        })
}

/// A change to one listed PCR of a document.
#[derive(Debug, Clone)]
enum Change {
    /// One bit of the value flipped.
    FlipBit { byte: usize, bit: u8 },
    /// The PCR left out of the document.
    Remove,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0usize..48, 0u8..8).prop_map(|(byte, bit)| Change::FlipBit { byte, bit }),
        Just(Change::Remove),
    ]
}

/// Applies `change` to PCR `index` of `pcrs`.
fn apply(pcrs: &mut Pcrs, index: u8, change: &Change) {
    match change {
        Change::FlipBit { byte, bit } => {
            if let Some(value) = pcrs.get_mut(&index) {
                value[*byte] ^= 1 << bit;
            }
        }
        Change::Remove => {
            pcrs.remove(&index);
        }
    }
}

/// Returns the entry that the any-of definition allows: the first one whose listed PCRs are
/// all in the document with equal values. `None` means a denial.
fn expected_entry(entries: &[Pcrs], document: &Pcrs) -> Option<usize> {
    entries.iter().position(|entry| {
        entry
            .iter()
            .all(|(index, value)| document.get(index) == Some(value))
    })
}

proptest! {
    #[test]
    fn allows_document_with_every_listed_pcr(
        entry in allow_entry(),
        extra in proptest::collection::btree_map(0u8..=31, any::<[u8; 48]>(), 0..8),
    ) {
        let rule = key_rule(std::slice::from_ref(&entry), false);
        let mut document = extra;
        document.extend(entry.iter().map(|(index, value)| (*index, *value)));

        let decision = policy::evaluate("app", &rule, &document_pcrs(&document), false);

        prop_assert_eq!(decision, Decision::Allow { entry: 0 });
    }

    #[test]
    fn denies_when_any_listed_pcr_differs(
        entry in allow_entry(),
        changes in proptest::collection::vec((any::<prop::sample::Index>(), change()), 1..=4),
    ) {
        let rule = key_rule(std::slice::from_ref(&entry), false);
        let listed: Vec<u8> = entry.keys().copied().collect();
        let mut document = entry.clone();
        for (pick, change) in &changes {
            apply(&mut document, listed[pick.index(listed.len())], change);
        }
        // Two flips of the same bit cancel out, and such a document still matches.
        let differing: Vec<u8> = listed
            .iter()
            .copied()
            .filter(|index| document.get(index) != entry.get(index))
            .collect();
        prop_assume!(!differing.is_empty());

        let decision = policy::evaluate("app", &rule, &document_pcrs(&document), false);

        let Decision::Deny(denial) = decision else {
            return Err(TestCaseError::fail(format!("allowed after {changes:?}")));
        };
        let DenialReason::NoEntryMatches { comparisons } = denial.reason() else {
            return Err(TestCaseError::fail(format!("unexpected reason {:?}", denial.reason())));
        };
        let reported: Vec<u8> = comparisons[0]
            .mismatched
            .iter()
            .map(|mismatch| mismatch.index.get())
            .collect();
        prop_assert_eq!(reported, differing);
    }

    #[test]
    fn decision_matches_any_of_definition(
        entries in proptest::collection::vec(allow_entry(), 1..=4),
        base in 0usize..4,
        changes in proptest::collection::vec((0u8..=31, change()), 0..=4),
    ) {
        let rule = key_rule(&entries, false);
        let mut document = entries[base % entries.len()].clone();
        for (index, change) in &changes {
            apply(&mut document, *index, change);
        }

        let decision = policy::evaluate("app", &rule, &document_pcrs(&document), false);

        match expected_entry(&entries, &document) {
            Some(entry) => prop_assert_eq!(decision, Decision::Allow { entry }),
            None => prop_assert!(matches!(decision, Decision::Deny(_)), "{decision:?}"),
        }
    }

    #[test]
    fn denies_debug_mode_unless_rule_allows_it(entry in allow_entry(), allow_debug in any::<bool>()) {
        let rule = key_rule(std::slice::from_ref(&entry), allow_debug);

        let decision = policy::evaluate("app", &rule, &document_pcrs(&entry), true);

        if allow_debug {
            prop_assert_eq!(decision, Decision::Allow { entry: 0 });
        } else {
            let Decision::Deny(denial) = decision else {
                return Err(TestCaseError::fail("debug-mode document allowed"));
            };
            prop_assert_eq!(denial.reason(), &DenialReason::DebugMode);
        }
    }
}
