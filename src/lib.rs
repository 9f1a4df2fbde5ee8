//! enclave-broker: releases secrets to applications in AWS Nitro Enclaves, only to the
//! measured image, by way of KMS `Decrypt` with `Recipient`.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod attestation;
pub mod clock;
pub mod deliver;
pub mod envelope;
pub mod error_text;
pub mod file_input;
pub mod kms;
pub mod policy;
pub mod proxy;
pub mod release;
pub mod secret;
pub mod server;
pub mod transport;
