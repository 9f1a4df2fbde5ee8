#!/usr/bin/env bash
# The shell example of the Anjuna attestation endpoint documentation, run against our
# attest-server. Only the address differs: the test passes ENDPOINT (a server it started on
# 127.0.0.1 with an ephemeral port) instead of http://localhost:50123.
#
# Run in an empty working folder. Leaves private.pem, public.der, report.bin, and the three
# parameter values in user_data.b64, public_key.b64 and nonce.b64 for the test to check.
set -euo pipefail
: "${ENDPOINT:?set ENDPOINT to http://127.0.0.1:PORT of a running attest-server}"

for tool in openssl basenc curl head; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 127; }
done

# A fresh P-384 key; the document will carry its public half as SubjectPublicKeyInfo DER.
openssl ecparam -name secp384r1 -genkey -noout -out private.pem
openssl ec -in private.pem -pubout -outform DER -out public.der

# The three parameters, base64url: 13 bytes of text (echo adds a newline), the key, and 16
# random bytes.
userData=$(echo "Hello World!" | basenc -w0 --base64url)
publicKey=$(basenc -w0 --base64url public.der)
nonce=$(head -c 16 /dev/random | basenc --base64url)

# One GET with all three parameters; the raw COSE_Sign1 document lands in report.bin.
curl "${ENDPOINT}/api/v1/attestation/report?userData=${userData}&publicKey=${publicKey}&nonce=${nonce}" -o report.bin

# Show the document as standard base64.
cat report.bin | basenc --base64

printf '%s' "$userData" > user_data.b64
printf '%s' "$publicKey" > public_key.b64
printf '%s' "$nonce" > nonce.b64
