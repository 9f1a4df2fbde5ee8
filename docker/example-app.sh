#!/bin/sh
# Example application: reports which secrets it received, by name and length only (never the
# values), then stays up like a service would.
set -eu

if [ -n "${DB_PASSWORD:-}" ]; then
  echo "example-app: DB_PASSWORD received (${#DB_PASSWORD} characters)"
else
  echo "example-app: DB_PASSWORD missing" >&2
  exit 1
fi

while :; do
  sleep 3600
done
