//! AWS Nitro Enclaves attestation documents: parsing, verification, the development
//! simulator and the sources that produce documents.

pub mod cbor;
pub mod cose;
pub mod document;
pub mod pcr;
pub mod roots;
pub mod sim;
pub mod verify;
pub mod x509;
