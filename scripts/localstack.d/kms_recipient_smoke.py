"""Check that a running LocalStack returns CiphertextForRecipient from KMS Decrypt with a Recipient.

Run it with the LocalStack virtual environment's Python, which has boto3,
cbor2, asn1crypto and cryptography:

    .venv-localstack/bin/python scripts/localstack.d/kms_recipient_smoke.py \
        [--attestation-doc FILE] [--cfr-out FILE]

The check creates a symmetric key, encrypts a short plaintext and decrypts it
with Recipient set twice:

1. With a COSE_Sign1-shaped document built here around a fresh RSA key, so the
   returned CiphertextForRecipient (CMS EnvelopedData, DER) can be opened and
   compared with the plaintext. LocalStack 4.13.1 reads only the public_key
   field of the payload and checks no signature.
2. With --attestation-doc, a real Nitro attestation document whose private key
   is not available here. The response must contain CiphertextForRecipient and
   no Plaintext. --cfr-out saves that CiphertextForRecipient.

Exit status 0 means every check passed.
"""

import argparse
import os
import sys

import boto3
import cbor2
from asn1crypto import cms
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

PLAINTEXT = b"enclave-broker LocalStack smoke check"


def make_kms_client(endpoint_url):
    # The request goes to LocalStack on loopback only, never through a proxy
    # taken from the environment.
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    os.environ["no_proxy"] = "127.0.0.1,localhost"
    return boto3.client(
        "kms",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def build_attestation_document(public_key_der):
    """Build an unsigned COSE_Sign1 array whose payload carries public_key_der."""
    payload = cbor2.dumps({"module_id": "localstack-smoke", "public_key": public_key_der})
    return cbor2.dumps([cbor2.dumps({1: -35}), {}, payload, b"\x00" * 96])


def open_enveloped_data(enveloped_data_der, private_key):
    """Decrypt CMS EnvelopedData with RSAES-OAEP-SHA256 key transport and AES-256-CBC content."""
    content_info = cms.ContentInfo.load(enveloped_data_der)
    if content_info["content_type"].native != "enveloped_data":
        raise ValueError(f"content type is {content_info['content_type'].native}, expected enveloped_data")

    enveloped = content_info["content"]
    recipient = enveloped["recipient_infos"][0].chosen
    content_key = private_key.decrypt(
        recipient["encrypted_key"].native,
        rsa_padding.OAEP(
            mgf=rsa_padding.MGF1(algorithm=hashes.SHA256()),
            algorithm=hashes.SHA256(),
            label=None,
        ),
    )

    encrypted_content_info = enveloped["encrypted_content_info"]
    algorithm = encrypted_content_info["content_encryption_algorithm"]
    if algorithm["algorithm"].native != "aes256_cbc":
        raise ValueError(f"content encryption is {algorithm['algorithm'].native}, expected aes256_cbc")
    iv = algorithm["parameters"].native
    decryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(encrypted_content_info["encrypted_content"].native) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def decrypt_for_recipient(kms, ciphertext_blob, attestation_document):
    request = {
        "CiphertextBlob": ciphertext_blob,
        "Recipient": {
            "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
            "AttestationDocument": attestation_document,
        },
    }
    response = kms.decrypt(**request)
    if "Plaintext" in response:
        raise AssertionError("Decrypt with Recipient returned Plaintext")
    if "CiphertextForRecipient" not in response:
        raise AssertionError(f"Decrypt with Recipient returned no CiphertextForRecipient: keys {sorted(response)}")
    return response["CiphertextForRecipient"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--endpoint-url",
        default=f"http://127.0.0.1:{os.environ.get('LOCALSTACK_PORT', '4566')}",
        help="LocalStack URL (default: http://127.0.0.1:$LOCALSTACK_PORT, port 4566 if unset)",
    )
    parser.add_argument("--attestation-doc", help="real attestation document (COSE_Sign1, CBOR) to decrypt for")
    parser.add_argument("--cfr-out", help="file to write the CiphertextForRecipient returned for --attestation-doc")
    args = parser.parse_args()

    kms = make_kms_client(args.endpoint_url)
    key_id = kms.create_key(KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    ciphertext_blob = kms.encrypt(KeyId=key_id, Plaintext=PLAINTEXT)["CiphertextBlob"]
    print(f"created key {key_id}, ciphertext blob {len(ciphertext_blob)} bytes")

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_key_der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ciphertext_for_recipient = decrypt_for_recipient(kms, ciphertext_blob, build_attestation_document(public_key_der))
    opened = open_enveloped_data(ciphertext_for_recipient, private_key)
    if opened != PLAINTEXT:
        raise AssertionError(f"CiphertextForRecipient opened to {opened!r}, expected {PLAINTEXT!r}")
    print(f"round trip: CiphertextForRecipient {len(ciphertext_for_recipient)} bytes opened to the original plaintext")

    if args.attestation_doc:
        with open(args.attestation_doc, "rb") as f:
            attestation_document = f.read()
        ciphertext_for_recipient = decrypt_for_recipient(kms, ciphertext_blob, attestation_document)
        content_type = cms.ContentInfo.load(ciphertext_for_recipient)["content_type"].native
        print(f"{args.attestation_doc}: CiphertextForRecipient {len(ciphertext_for_recipient)} bytes, CMS {content_type}")
        if args.cfr_out:
            with open(args.cfr_out, "wb") as f:
                f.write(ciphertext_for_recipient)
            print(f"wrote {args.cfr_out}")

    print("2 passed, 0 failed" if args.attestation_doc else "1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
