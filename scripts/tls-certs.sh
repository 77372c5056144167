#!/usr/bin/env bash
# Makes a certificate authority and node certificates for weft's TLS
# (docs/security.md, "Encryption in transit (TLS)") with openssl: the same
# steps that page walks through, for tests and for trying TLS out. Keys are
# EC P-256, unencrypted, mode 0600.
#
#   scripts/tls-certs.sh ca DIR
#       DIR/ca.key, DIR/ca.crt: a new CA (valid 10 years)
#   scripts/tls-certs.sh node DIR NAME SAN
#       DIR/NAME.key, DIR/NAME.crt signed by DIR/ca.*, valid 1 year, with
#       subjectAltName SAN (e.g. "IP:127.0.0.1,DNS:localhost")
set -euo pipefail

usage() {
  echo "usage: $0 ca DIR | $0 node DIR NAME SAN" >&2
  exit 2
}

[ $# -ge 2 ] || usage
cmd=$1 dir=$2
mkdir -p "$dir"
umask 077
case $cmd in
ca)
  [ $# -eq 2 ] || usage
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key"
  openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 \
    -subj "/CN=weft cluster CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.crt"
  ;;
node)
  [ $# -eq 4 ] || usage
  name=$3 san=$4
  openssl ecparam -name prime256v1 -genkey -noout -out "$dir/$name.key"
  openssl req -new -key "$dir/$name.key" -subj "/CN=$name" \
    -out "$dir/$name.csr"
  ext=$(mktemp)
  trap 'rm -f "$ext"' EXIT
  printf '%s\n' "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyAgreement" \
    "extendedKeyUsage=serverAuth,clientAuth" \
    "subjectAltName=$san" >"$ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" \
    -CAkey "$dir/ca.key" -CAcreateserial -sha256 -days 365 \
    -extfile "$ext" -out "$dir/$name.crt" 2>/dev/null
  rm -f "$dir/$name.csr"
  ;;
*)
  usage
  ;;
esac
