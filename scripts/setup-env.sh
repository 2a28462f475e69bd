#!/usr/bin/env bash
# Sourced by scripts/demo and scripts/test: makes sure java, mvn and a Python 3.11+ are
# present (installing Debian packages when run as root), then builds .venv with mmstream.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
# The test suite also wants a PostgreSQL server to start (the ledger's shared backend)
if [[ "${MMSTREAM_TEST_PACKAGES:-}" == 1 ]]; then
  command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
    || need_apt+=(postgresql)
  # and a headless browser for the dashboard test
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
fi
if ((${#need_apt[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "[setup] installing ${need_apt[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "[setup] missing: ${need_apt[*]} (Debian packages for the local Kafka broker and the tests); install them and retry" >&2
    exit 1
  fi
fi

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "[setup] mmstream needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2; exit 1; }

if [[ ! -x "$ROOT/.venv/bin/python" ]]; then
  echo "[setup] creating $ROOT/.venv"
  "$PYTHON" -m venv "$ROOT/.venv"
fi
# MMSTREAM_EXTRAS: which optional dependency sets (the demo needs none; the tests want
# dev and reference). Re-install only when pyproject.toml changed or the extras differ.
extras="${MMSTREAM_EXTRAS:-}"
stamp="$ROOT/.venv/.mmstream-installed${extras:+-${extras//,/-}}"
if [[ ! -f "$stamp" || "$ROOT/pyproject.toml" -nt "$stamp" ]]; then
  echo "[setup] installing mmstream${extras:+[$extras]} and its dependencies into .venv"
  "$ROOT/.venv/bin/python" -m pip install -q --upgrade pip
  "$ROOT/.venv/bin/python" -m pip install -q -e "$ROOT${extras:+[$extras]}"
  touch "$stamp"
fi

# The tests also run promtool on deploy/alerts.yml. Debian's prometheus package ships it: the
# package is fetched with `apt-get download` (no root needed once the apt lists exist) into the
# cache, and only usr/bin/promtool is unpacked, into .venv/bin. Skipped when one is present.
if [[ "${MMSTREAM_TEST_PACKAGES:-}" == 1 && ! -x "$ROOT/.venv/bin/promtool" ]] \
    && ! command -v promtool >/dev/null 2>&1; then
  debs="${MMSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmstream}/debs"
  deb="$(compgen -G "$debs/prometheus_*.deb" | head -n 1 || true)"
  if [[ -z "$deb" ]] && command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then
    echo "[setup] downloading Debian's prometheus package (for promtool) into $debs"
    mkdir -p "$debs"
    (cd "$debs" && apt-get download -qq prometheus 2>/dev/null) \
      || { [[ $(id -u) -eq 0 ]] && apt-get update -qq \
           && (cd "$debs" && apt-get download -qq prometheus 2>/dev/null); } || true
    deb="$(compgen -G "$debs/prometheus_*.deb" | head -n 1 || true)"
  fi
  unpack="$(mktemp -d "$ROOT/.venv/promtool.XXXXXX")"   # same file system: mv is a rename
  if [[ -n "$deb" ]] && dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$unpack" ./usr/bin/promtool \
      && "$unpack/usr/bin/promtool" --version >/dev/null 2>&1; then
    mv "$unpack/usr/bin/promtool" "$ROOT/.venv/bin/promtool"   # whole, or not at all
    echo "[setup] $("$ROOT/.venv/bin/promtool" --version 2>&1 | head -n 1) in .venv/bin"
  else
    [[ -z "$deb" ]] || rm -f "$deb"   # unreadable: fetched again next time
    echo "[setup] could not get promtool from Debian's prometheus package (as root run" \
      "apt-get update, or put promtool on PATH): tests/unit/test_monitoring.py will fail" >&2
  fi
  rm -rf "$unpack"
fi
export PATH="$ROOT/.venv/bin:$PATH"
