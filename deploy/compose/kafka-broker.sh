#!/usr/bin/env bash
# The compose broker: one KRaft node whose clients all authenticate (SASL SCRAM over TLS,
# listener BROKER for the containers, HOST for this machine's localhost:29092), with ACLs
# enforced (StandardAuthorizer, kafka/acls.txt applied by the kafka-setup service). The
# super user "admin" is written into the storage when it is first formatted. The controller
# listener is PLAINTEXT on the container's own loopback (SCRAM cannot authenticate
# controllers): only this node reaches it, as ANONYMOUS, hence that super user.
# Environment: CLUSTER_ID, KAFKA_ADMIN_PASSWORD; TLS material made by kafka-tls.sh in
# /etc/socialcrm/kafka-tls (private) and /etc/socialcrm/kafka-ca (public).
set -euo pipefail
: "${KAFKA_ADMIN_PASSWORD:?KAFKA_ADMIN_PASSWORD is not set: add it to .env (README)}"
home=${KAFKA_HOME:-/opt/kafka}
tls=${KAFKA_TLS_DIR:-/etc/socialcrm/kafka-tls}
ca=${KAFKA_CA_FILE:-/etc/socialcrm/kafka-ca/ca.crt}
data=${KAFKA_DATA_DIR:-/var/lib/kafka/data}
work=${KAFKA_WORK_DIR:-/tmp}
store_password=$(cat "$tls/store-password")
scram=org.apache.kafka.common.security.scram.ScramLoginModule
umask 077
config=$work/server.properties
cat >"$config" <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9093
listeners=BROKER://:9092,HOST://:29092,CONTROLLER://127.0.0.1:9093
advertised.listeners=BROKER://kafka:9092,HOST://localhost:29092
listener.security.protocol.map=BROKER:SASL_SSL,HOST:SASL_SSL,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=BROKER
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
ssl.keystore.type=PKCS12
ssl.keystore.location=$tls/broker.p12
ssl.keystore.password=$store_password
ssl.key.password=$store_password
# The broker is its own client (inter-broker): it trusts the CA too.
ssl.truststore.type=PEM
ssl.truststore.location=$ca
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:ANONYMOUS
log.dirs=$data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Topics are created by kafka-setup and the services, never by accident.
auto.create.topics.enable=false
PROPERTIES
# Every SASL listener needs a login module per mechanism; the broker's own connections
# (inter-broker, as admin) use the BROKER listener's.
for listener in broker host; do
  for mechanism in scram-sha-512 scram-sha-256; do
    echo "listener.name.$listener.$mechanism.sasl.jaas.config=$scram required" \
      "username=\"admin\" password=\"$KAFKA_ADMIN_PASSWORD\";" >>"$config"
  done
done
# The healthcheck's client, as the super user.
cat >"$work/admin.properties" <<PROPERTIES
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=$scram required username="admin" password="$KAFKA_ADMIN_PASSWORD";
ssl.truststore.type=PEM
ssl.truststore.location=$ca
PROPERTIES
"$home/bin/kafka-storage.sh" format --ignore-formatted --cluster-id "$CLUSTER_ID" \
  --config "$config" --add-scram "SCRAM-SHA-512=[name=admin,password=$KAFKA_ADMIN_PASSWORD]"
exec "$home/bin/kafka-server-start.sh" "$config"
