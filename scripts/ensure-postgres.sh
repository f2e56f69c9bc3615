#!/usr/bin/env bash
# Makes sure the PostgreSQL server that `make run` and `make test` use is up: the one in
# DATABASE_URL / TEST_DATABASE_URL when set, else the local default 127.0.0.1:5432.
# A local Debian cluster that is installed but stopped is started. With --install, a
# missing server is installed from apt first (what CI does on a bare machine).
set -euo pipefail

url="${TEST_DATABASE_URL:-${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"
hostport="${url#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"
[ "$port" = "$hostport" ] && port=5432

ready() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h "$host" -p "$port"
  else
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
  fi
}

if ready; then exit 0; fi

if [ "$host" != "127.0.0.1" ] && [ "$host" != "localhost" ]; then
  echo "PostgreSQL at $host:$port is not reachable. Start it, or point DATABASE_URL / TEST_DATABASE_URL at a running server." >&2
  exit 1
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1 && [ "${1:-}" = "--install" ]; then
  echo "Installing PostgreSQL from apt…" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi

if command -v pg_ctlcluster >/dev/null 2>&1; then
  for version in $(ls /etc/postgresql 2>/dev/null); do
    echo "Starting PostgreSQL $version (pg_ctlcluster)…" >&2
    pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
  done
  # The tests connect as postgres over TCP without a password, as the development
  # machines are set up (trust auth on loopback).
  for _ in $(seq 1 60); do
    if ready; then exit 0; fi
    sleep 0.5
  done
fi

cat >&2 <<MSG
PostgreSQL is not running on $host:$port and could not be started.
Start one of:
  pg_ctlcluster --skip-systemctl-redirect 15 main start   # Debian's PostgreSQL, installed with: apt-get install postgresql
  docker compose up -d postgres                           # the compose.yaml in this repository
or point DATABASE_URL (make run) and TEST_DATABASE_URL (make test) at a server you have.
MSG
exit 1
