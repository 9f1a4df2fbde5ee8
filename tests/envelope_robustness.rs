//! Damaged envelopes must produce an error or a plaintext, never a panic: every truncation,
//! every single-bit flip, and a fixed sequence of pseudo-random multi-byte corruptions of real
//! samples in both shapes.

mod envelope_support;

use enclave_broker::envelope::{self, ContentEncryptionAlgorithm, EnvelopedData, RecipientKey};
use envelope_support::*;

/// One envelope to damage, with the key to open it.
struct Sample {
    name: &'static str,
    cms: Vec<u8>,
    key: RecipientKey,
    /// Whether `key` opens the undamaged envelope.
    opens: bool,
}

/// Returns the real KMS samples, the DER re-encoding, the LocalStack shape built from a KMS
/// sample, and the envelope captured from LocalStack.
fn samples() -> Vec<Sample> {
    let localstack = SampleParts::from_envelope(&edgebit_envelope())
        .localstack_envelope()
        .encode();
    let sample = |name, cms, key, opens| Sample {
        name,
        cms,
        key,
        opens,
    };
    vec![
        sample("edgebit BER", edgebit_envelope(), edgebit_key(), true),
        sample("enclaver BER", enclaver_envelope(), enclaver_key(), true),
        sample(
            "edgebit DER",
            fixture("edgebit_sdkgo_ciphertext_for_recipient.der"),
            edgebit_key(),
            true,
        ),
        sample("LocalStack shape", localstack, edgebit_key(), true),
        // No key was kept for the capture, so opening fails at the RSA step, after the whole
        // envelope has been parsed.
        sample(
            "LocalStack capture",
            fixture("localstack_4.13.1_ciphertext_for_recipient.der"),
            edgebit_key(),
            false,
        ),
    ]
}

#[test]
fn rejects_every_truncation_of_real_samples() {
    for Sample { name, cms, key, .. } in samples() {
        for len in 0..cms.len() {
            let truncated = &cms[..len];
            assert!(
                EnvelopedData::parse(truncated).is_err(),
                "{name}: parsed {len} bytes"
            );
            assert!(
                envelope::open(truncated, &key).is_err(),
                "{name}: opened {len} bytes"
            );
        }
    }
}

/// Returns the range where `needle` occurs in `haystack`, or an empty range.
fn find(haystack: &[u8], needle: &[u8]) -> std::ops::Range<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
        .map_or(0..0, |start| start..start + needle.len())
}

#[test]
fn survives_every_bit_flip_of_real_samples() {
    for Sample { name, cms, key, .. } in samples() {
        // Flips may still open an envelope only where the bytes are not authenticated or not
        // interpreted: the IV, the ciphertext (CBC has no integrity check, and a damaged last
        // block keeps valid padding about once in 256), and LocalStack's placeholder rid.
        let parsed = EnvelopedData::parse(&cms).unwrap();
        let content_info = parsed.encrypted_content_info();
        let ContentEncryptionAlgorithm::Aes256Cbc { iv } =
            content_info.content_encryption_algorithm()
        else {
            panic!("{name}: not aes256-CBC");
        };
        let tolerated = [
            find(&cms, &iv),
            find(&cms, content_info.encrypted_content()),
            find(&cms, &localstack_rid()),
        ];

        for index in 0..cms.len() {
            for bit in 0..8 {
                let mut damaged = cms.clone();
                damaged[index] ^= 1 << bit;
                let _ = EnvelopedData::parse(&damaged);
                let opened = envelope::open(&damaged, &key).is_ok();
                let is_tolerated = tolerated.iter().any(|range| range.contains(&index));
                assert!(
                    !opened || is_tolerated,
                    "{name}: opened with bit {bit} of byte {index} flipped"
                );
            }
        }
    }
}

#[test]
fn survives_pseudo_random_corruption_of_real_samples() {
    // xorshift64 with a fixed seed, so every run checks the same inputs.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };

    for Sample {
        name,
        cms,
        key,
        opens,
    } in samples()
    {
        for round in 0..2000 {
            let mut damaged = cms.clone();
            let edits = 1 + next() % 4;
            for _ in 0..edits {
                let index = (next() % damaged.len() as u64) as usize;
                match next() % 4 {
                    0 => damaged[index] = 0x00,
                    1 => damaged[index] = 0x80,
                    2 => damaged[index] = 0xff,
                    _ => damaged[index] = next() as u8,
                }
            }
            if round % 4 == 0 {
                let cut = (next() % damaged.len() as u64) as usize;
                damaged.truncate(cut);
            }
            let _ = EnvelopedData::parse(&damaged);
            let _ = envelope::open(&damaged, &key);
        }
        let undamaged_opens = envelope::open(&cms, &key).is_ok();
        assert_eq!(undamaged_opens, opens, "{name}: undamaged sample");
    }
}

#[test]
fn rejects_deeply_nested_input_without_overflowing_the_stack() {
    // 100 000 nested indefinite SEQUENCEs: a recursive reader without a depth limit would
    // overflow the stack long before reaching the end.
    let levels = 100_000;
    let mut input = [0x30, 0x80].repeat(levels);
    input.extend([0x00, 0x00].repeat(levels));
    assert!(EnvelopedData::parse(&input).is_err());

    // The same inside the issuer Name of a LocalStack-shaped rid, which is skipped generically.
    let parts = SampleParts::from_envelope(&edgebit_envelope());
    let mut nested_issuer = [0x30, 0x80].repeat(levels);
    nested_issuer.extend([0x00, 0x00].repeat(levels));
    let rid = constructed(0x30, &[&nested_issuer, &integer(1)], Lengths::Indefinite);
    let mut envelope = parts.localstack_envelope();
    envelope.recipient_infos = vec![key_trans_recipient_info(
        0,
        &rid,
        &kms_oaep_algorithm(),
        &parts.encrypted_key,
    )];
    let error = EnvelopedData::parse(&envelope.encode()).unwrap_err();
    assert!(error.to_string().contains("nesting deeper than"), "{error}");
}
