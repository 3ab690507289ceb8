#!/usr/bin/env bash
# A throw-away PKI for the test scenarios: a CA (made once per directory) and one
# certificate per call, with the subjectAltNames given. Not for production.
#   scripts/test-pki.sh DIR NAME SAN [SAN ...]    SAN: IP:10.0.0.1 or DNS:prometheus
# Writes DIR/ca.crt, DIR/ca.key, DIR/NAME.crt, DIR/NAME.key (NAME may hold a folder,
# host/service as roles/pki lays them out); keeps files that exist.
set -euo pipefail
dir=$1 name=$2
shift 2
mkdir -p "$dir"
cd "$dir"
if [[ ! -s ca.crt ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
    -subj "/CN=promha test CA" -keyout ca.key -out ca.crt 2>/dev/null
fi
[[ -s "$name.crt" ]] && exit 0
mkdir -p "$(dirname "$name")"
sans=$(IFS=,; echo "$*")
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=${name//\//-}" \
  -keyout "$name.key" -out "$name.csr" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$sans" > "$name.ext"
openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 \
  -extfile "$name.ext" -out "$name.crt" 2>/dev/null
rm -f "$name.csr" "$name.ext"
chmod 0600 "$name.key" ca.key
