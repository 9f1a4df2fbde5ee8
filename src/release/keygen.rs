//! Recipient key generation under a deadline.
//!
//! A fresh enclave kernel can start with an empty entropy pool, and key generation then
//! blocks without a word. The work runs on its own thread, and the caller stops waiting
//! when the deadline passes, so start-up fails with a message instead of hanging.

use std::sync::mpsc;
use std::time::Duration;

use crate::envelope::{EnvelopeError, RecipientKey, RsaBits};

/// Why no key pair came out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeygenError {
    #[error(
        "RSA-{bits} key generation did not finish within {} s; the random number generator \
         may not be ready (empty entropy pool)",
        deadline.as_secs()
    )]
    TimedOut { bits: u32, deadline: Duration },
    #[error("RSA key generation failed: {0}")]
    Failed(EnvelopeError),
    #[error("RSA key generation thread stopped without a result")]
    Stopped,
}

/// Runs `generate` on a new thread and waits at most `deadline` for its result. On a
/// timeout the thread is left behind; it ends with the process.
pub fn run_with_deadline<T, F>(generate: F, deadline: Duration) -> Result<T, RecvError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (sender, receiver) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("keygen".to_owned())
        .spawn(move || {
            let _ = sender.send(generate());
        })
        .map_err(|_| RecvError::Stopped)?;
    receiver
        .recv_timeout(deadline)
        .map_err(|error| match error {
            mpsc::RecvTimeoutError::Timeout => RecvError::TimedOut,
            mpsc::RecvTimeoutError::Disconnected => RecvError::Stopped,
        })
}

/// Why `run_with_deadline` returned without a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    TimedOut,
    Stopped,
}

/// Generates the recipient key pair, failing after `deadline`.
pub fn generate_recipient_key(
    bits: RsaBits,
    deadline: Duration,
) -> Result<RecipientKey, KeygenError> {
    generate_with_deadline(bits, deadline, move || RecipientKey::generate(bits))
}

/// Runs `generate` for a key of `bits` under `deadline` and maps the outcome to
/// [`KeygenError`]. Tests pass a generator that never returns, as a blocked RNG would.
fn generate_with_deadline<F>(
    bits: RsaBits,
    deadline: Duration,
    generate: F,
) -> Result<RecipientKey, KeygenError>
where
    F: FnOnce() -> Result<RecipientKey, EnvelopeError> + Send + 'static,
{
    let bit_count = bits.bits();
    match run_with_deadline(generate, deadline) {
        Ok(Ok(key)) => Ok(key),
        Ok(Err(error)) => Err(KeygenError::Failed(error)),
        Err(RecvError::TimedOut) => Err(KeygenError::TimedOut {
            bits: bit_count,
            deadline,
        }),
        Err(RecvError::Stopped) => Err(KeygenError::Stopped),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_timeout_when_generator_never_returns() {
        // A stand-in for a blocked RNG: the generator never finishes.
        let result = run_with_deadline(
            || loop {
                std::thread::park();
            },
            Duration::from_millis(50),
        );
        assert_eq!(result.err(), Some(RecvError::TimedOut));
    }

    #[test]
    fn rejects_hanging_generator_with_rng_message() {
        let result = generate_with_deadline(RsaBits::Rsa2048, Duration::from_secs(1), || {
            loop {
                std::thread::park();
            }
        });
        let error = result.expect_err("a generator that never returns must time out");
        assert!(
            matches!(error, KeygenError::TimedOut { bits: 2048, .. }),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "RSA-2048 key generation did not finish within 1 s; the random number generator \
             may not be ready (empty entropy pool)"
        );
    }

    #[test]
    fn returns_value_within_deadline() {
        assert_eq!(run_with_deadline(|| 7, Duration::from_secs(5)), Ok(7));
    }

    #[test]
    fn generates_2048_bit_key_with_294_byte_spki() {
        let key = generate_recipient_key(RsaBits::Rsa2048, Duration::from_secs(60)).unwrap();
        assert_eq!(key.public_key_der().len(), 294);
    }
}
