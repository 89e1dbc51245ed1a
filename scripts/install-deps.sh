#!/usr/bin/env bash
# Installs the Debian packages rtscore needs, only those missing. Idempotent:
# a run with nothing missing installs nothing and touches no package list.
#   install-deps.sh          build + runtime (make, make demo)
#   install-deps.sh --test   also what the tests and benchmarks use (make test)
set -euo pipefail

PKGS=(
  # build
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  # runtime libraries
  libyaml-dev libxxhash-dev libjansson-dev librdkafka-dev libhiredis-dev libmicrohttpd-dev
  libsystemd-dev
)
if [ "${1:-}" = "--test" ]; then
  PKGS+=(
    # model parity tests (models trained inside the test by the real
    # libraries), make train, and the XGBoost C API for bench_model
    python3 python3-numpy python3-sklearn python3-xgboost python3-yaml libxgboost-dev
    # servers and clients the integration tests start or talk to
    redis-server kcat prometheus
  )
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
