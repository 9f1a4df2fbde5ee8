# syntax=docker/dockerfile:1
#
# Enclave image: enclave-broker, a release policy and an example application. Build it with
# Docker, then turn it into an enclave image file on the parent instance:
#
#   docker build -t enclave-broker-app .
#   nitro-cli build-enclave --docker-uri enclave-broker-app:latest --output-file app.eif
#
# The JSON that build-enclave prints feeds `enclave-broker policy set-pcrs`. Replace
# docker/policy.json (copied to /etc/enclave-broker/policy.json) with your own policy, or
# pass --build-arg POLICY=path/in/context.json.

# Build stage: the release binary. The versions match those the project is developed with.
FROM rust:1.95-slim-bookworm AS build
# aws-lc-sys compiles C code; cmake covers the builds that do not use its prebuilt bindings.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin enclave-broker

# Runtime stage: only what the enclave runs. iproute2 provides `ip` for the entrypoint.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ARG POLICY=docker/policy.json
COPY --from=build /src/target/release/enclave-broker /usr/local/bin/enclave-broker
COPY ${POLICY} /etc/enclave-broker/policy.json
COPY docker/example-app.sh /usr/local/bin/example-app
COPY docker/entrypoint.sh /usr/local/bin/entrypoint
ENV AWS_REGION=us-east-1
ENTRYPOINT ["/usr/local/bin/entrypoint"]
