#!/bin/sh
# Entrypoint of the enclave image: bring up loopback, then let enclave-broker release the
# secrets and replace itself with the application, secrets in its environment.
#
# Environment (defaults in brackets):
#   ENCLAVE_BROKER          broker binary [/usr/local/bin/enclave-broker]
#   ENCLAVE_BROKER_POLICY   release policy [/etc/enclave-broker/policy.json]
#   AWS_REGION              region of the KMS endpoint [us-east-1]
#   KMS_VSOCK_PORT          parent proxy's vsock port for KMS [8000]
#   IMDS_VSOCK_PORT         parent proxy's vsock port for instance metadata [8002]
# Arguments are passed to the application.
set -eu

broker=${ENCLAVE_BROKER:-/usr/local/bin/enclave-broker}
policy=${ENCLAVE_BROKER_POLICY:-/etc/enclave-broker/policy.json}
region=${AWS_REGION:-us-east-1}
kms_port=${KMS_VSOCK_PORT:-8000}
imds_port=${IMDS_VSOCK_PORT:-8002}

# An enclave boots with the loopback interface down; the broker's attestation endpoint and
# anything else on 127.0.0.1 need it.
ip link set lo up

# CID 3 is the parent instance as seen from the enclave. The parent runs
# `enclave-broker proxy` with routes to these ports; TLS to KMS still ends in the broker.
exec "$broker" exec \
  --policy "$policy" \
  --attester nsm \
  --route "kms.$region.amazonaws.com:443=vsock:3:$kms_port" \
  --route "169.254.169.254:80=vsock:3:$imds_port" \
  -- /usr/local/bin/example-app "$@"
