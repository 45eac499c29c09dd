#!/usr/bin/env bash
# The compose broker's TLS material, made once on the first `up` (keytool of the Kafka
# image): a CA of this installation, and the broker's key and certificate (host names kafka
# and localhost) signed by it. The CA's key is thrown away after signing.
#   $1: private directory (the broker's keystore and its password), broker only;
#   $2: public directory (ca.crt, the services' KAFKA_SSL_CAFILE).
set -euo pipefail
private=$1
public=$2
if [[ -s "$private/broker.p12" && -s "$public/ca.crt" ]]; then
  echo "kafka TLS: already made"
  exit 0
fi
work=$(mktemp -d)
password=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
store() { keytool -storetype PKCS12 -storepass "$password" "$@"; }
store -genkeypair -keystore "$work/ca.p12" -alias ca -dname "CN=socialcrm compose kafka CA" \
  -keyalg EC -groupname secp256r1 -validity 3650 -ext bc:c
store -exportcert -keystore "$work/ca.p12" -alias ca -rfc -file "$work/ca.crt"
store -genkeypair -keystore "$work/broker.p12" -alias broker -dname "CN=kafka" \
  -keyalg EC -groupname secp256r1 -validity 825
store -certreq -keystore "$work/broker.p12" -alias broker -file "$work/broker.csr"
store -gencert -keystore "$work/ca.p12" -alias ca -infile "$work/broker.csr" \
  -outfile "$work/broker.crt" -rfc -validity 825 -ext SAN=dns:kafka,dns:localhost \
  -ext KU=digitalSignature -ext EKU=serverAuth
store -importcert -keystore "$work/broker.p12" -alias ca -file "$work/ca.crt" -noprompt
store -importcert -keystore "$work/broker.p12" -alias broker -file "$work/broker.crt"
install -m 0600 "$work/broker.p12" "$private/broker.p12"
printf '%s' "$password" >"$private/store-password"
chmod 0600 "$private/store-password"
install -m 0644 "$work/ca.crt" "$public/ca.crt"
# The broker runs as the image's user (appuser, uid 1000).
if [[ $(id -u) == 0 ]]; then
  chown -R 1000:1000 "$private"
fi
rm -rf "$work"
echo "kafka TLS: CA and broker certificate made"
