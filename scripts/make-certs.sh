#!/usr/bin/env bash
# The cloud broker's TLS certificates: a private CA and a server certificate it signs, made
# with openssl on the machine that runs the broker. Keys are never committed (deploy/certs/
# is ignored by git); gateways are given ca.crt to check the broker.
#
#   scripts/make-certs.sh OUT_DIR [DNS_NAME...]     (default names: the compose brokers)
#
# An existing CA in OUT_DIR is kept (gateways already trust it); the server certificate is
# made again each time (new names, renewal). ELDERCARE_CERT_DAYS sets its lifetime (825).
# ELDERCARE_CERT_KEY_MODE sets server.key's mode (0600; the Mosquitto and EMQX images run
# as their own users, so a compose host gives the key to that user or uses 0644 on a
# host where nobody else logs in).
set -euo pipefail

out=${1:?usage: make-certs.sh OUT_DIR [DNS_NAME...]}
shift
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  names=(mosquitto emqx1 emqx2 broker.eldercare.local localhost)
fi
days=${ELDERCARE_CERT_DAYS:-825}
key_mode=${ELDERCARE_CERT_KEY_MODE:-0600}
command -v openssl >/dev/null || { echo "openssl is not installed" >&2; exit 1; }

mkdir -p "$out"
cd "$out"
umask 077

if [ ! -s ca.key ] || [ ! -s ca.crt ]; then
  openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days 3650 \
    -subj "/O=eldercare/CN=eldercare broker CA" -keyout ca.key -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

san="IP:127.0.0.1"
for name in "${names[@]}"; do
  case "$name" in
    *[!A-Za-z0-9.-]* | "") echo "not a DNS name: '$name'" >&2; exit 2 ;;
  esac
  san="$san,DNS:$name"
done

ext=$(mktemp)
trap 'rm -f "$ext" server.csr' EXIT
printf '%s\n' \
  "basicConstraints=critical,CA:FALSE" \
  "keyUsage=critical,digitalSignature,keyEncipherment" \
  "extendedKeyUsage=serverAuth" \
  "subjectKeyIdentifier=hash" \
  "authorityKeyIdentifier=keyid,issuer" \
  "subjectAltName=$san" >"$ext"

openssl req -newkey rsa:2048 -sha256 -nodes -subj "/O=eldercare/CN=${names[0]}" \
  -keyout server.key -out server.csr 2>/dev/null
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
  -sha256 -extfile "$ext" -out server.crt 2>/dev/null
chmod 0644 ca.crt server.crt
chmod "$key_mode" server.key
echo "made $out/server.crt for ${names[*]} (signed by $out/ca.crt)"
