//! AWS Nitro Enclaves attestation documents: parsing, verification, the development
//! simulator and the sources that produce documents.

pub mod pcr;
pub mod source;
