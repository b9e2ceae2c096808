#!/usr/bin/env bash
# Regenerates the TLS fixtures of the fake Bot API server (tests/fixtures/tls): a test CA, a
# server certificate it signs for 127.0.0.1 and localhost, and an unrelated CA that must not
# verify it. Test-only material: the keys are public by being committed. The CA keys are
# thrown away, so rerunning replaces every file. Usage: scripts/make_test_ca.sh [out_dir]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-tests/fixtures/tls}
days=36500  # 100 years: the fixtures must not expire under the test suite
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

new_ca() {  # key_file cert_file common_name
  new_key "$1"
  openssl req -x509 -new -sha256 -key "$1" -out "$2" -days "$days" -subj "/CN=$3" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash"
}

new_ca "$work/ca.key" "$work/ca.pem" "replywatch test CA"
new_ca "$work/other_ca.key" "$work/other_ca.pem" "replywatch unrelated test CA"

new_key "$work/server.key"
openssl req -new -sha256 -key "$work/server.key" -out "$work/server.csr" -subj "/CN=127.0.0.1"
cat >"$work/server.ext" <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
openssl x509 -req -sha256 -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -set_serial "0x$(openssl rand -hex 8)" -days "$days" -extfile "$work/server.ext" \
  -out "$work/server.pem" 2>/dev/null

# Refuse to install a set that does not verify as the tests expect.
openssl verify -CAfile "$work/ca.pem" "$work/server.pem" >/dev/null
if openssl verify -CAfile "$work/other_ca.pem" "$work/server.pem" >/dev/null 2>&1; then
  echo "make_test_ca: the unrelated CA verifies the server certificate" >&2
  exit 1
fi

install -m 0644 "$work/ca.pem" "$work/other_ca.pem" "$work/server.pem" "$out/"
install -m 0644 "$work/server.key" "$out/server.key"
echo "make_test_ca: wrote ca.pem, other_ca.pem, server.pem, server.key to $out"
