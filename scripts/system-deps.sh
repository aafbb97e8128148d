#!/usr/bin/env bash
# Installs the Debian packages the platform needs when they are missing:
# PostGIS for the PostgreSQL server binaries (the private cluster) and gdal-bin
# (ogrinfo, used by the client tests). As root it installs them; otherwise it says
# which packages to install and fails.
set -euo pipefail
pg_major=""
for d in /usr/lib/postgresql/*/bin; do
  [ -x "$d/pg_ctl" ] && pg_major=$(basename "$(dirname "$d")")
done
missing=()
if [ -z "$pg_major" ]; then
  if [ -z "${DATABASE_URL:-}" ]; then missing+=(postgresql-15 postgresql-15-postgis-3); fi
elif [ ! -f "/usr/share/postgresql/$pg_major/extension/postgis.control" ]; then
  missing+=("postgresql-$pg_major-postgis-3")
fi
command -v ogrinfo >/dev/null || missing+=(gdal-bin)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing system packages: ${missing[*]}. Install them: sudo apt-get install ${missing[*]}" >&2
  exit 2
fi
echo "Installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
