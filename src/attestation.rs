//! AWS Nitro Enclaves attestation documents: parsing, verification, the development
//! simulator and the sources that produce documents.

pub mod pcr;
pub mod cbor;
pub mod cose;
pub mod document;
pub mod roots;
pub mod verify;
pub mod x509;
pub mod sim;
