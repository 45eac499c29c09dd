#!/usr/bin/env bash
# The platform's Kafka users, ACLs and topics, idempotently, as the Kafka super user.
# Runs in the apache/kafka image: the Kubernetes Job socialcrm-kafka-setup and the compose
# service kafka-setup.
#
# Environment:
#   KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL (SASL_SSL or SASL_PLAINTEXT),
#   KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD (the super user),
#   KAFKA_SSL_CAFILE (PEM of the brokers' CA, SASL_SSL);
#   KAFKA_PASSWORD_<USER> (INGEST, SENTIMENT, ROUTER, CRM_SINK, KPI, WORKSPACE): sets that service's
#     SCRAM credential; unset: the user is managed elsewhere (e.g. a Kafka operator);
#   ACLS: the ACL table (acls.txt next to this script);
#   TOPICS, TOPIC_PARTITIONS, TOPIC_REPLICATION_FACTOR, TOPIC_RETENTION_HOURS: the event
#     topics, each created with its .dlq and a bounded retention (set on existing ones too).
# Passwords are letters and digits (e.g. openssl rand -hex 24): they go into JAAS lines.
set -euo pipefail

bin=${KAFKA_BIN:-/opt/kafka/bin}
umask 077
admin_config=${TMPDIR:-/tmp}/kafka-admin.properties
{
  echo "security.protocol=$KAFKA_SECURITY_PROTOCOL"
  echo "sasl.mechanism=$KAFKA_SASL_MECHANISM"
  echo "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required" \
    "username=\"$KAFKA_SASL_USERNAME\" password=\"$KAFKA_SASL_PASSWORD\";"
  if [[ "$KAFKA_SECURITY_PROTOCOL" == SASL_SSL ]]; then
    echo "ssl.truststore.type=PEM"
    echo "ssl.truststore.location=$KAFKA_SSL_CAFILE"
  fi
} >"$admin_config"
kafka() {
  local tool=$1
  shift
  "$bin/$tool" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --command-config "$admin_config" \
    "$@" </dev/null
}

# 1. The services' SCRAM credentials (both mechanisms, so either client setting works).
users=$(grep -v '^[[:space:]]*#' "$ACLS" | awk 'NF {print $1}' | sort -u)
for user in $users; do
  variable="KAFKA_PASSWORD_$(echo "$user" | tr 'a-z-' 'A-Z_')"
  password=${!variable:-}
  if [[ -z "$password" ]]; then
    echo "user $user: $variable unset, credential left as it is"
    continue
  fi
  kafka kafka-configs.sh --alter --entity-type users --entity-name "$user" --add-config \
    "SCRAM-SHA-256=[password=$password],SCRAM-SHA-512=[password=$password]" >/dev/null
  echo "user $user: credential set"
done

# 2. The ACLs: one call per row, all its operations (adding an existing ACL changes nothing).
grep -v '^[[:space:]]*#' "$ACLS" | while read -r user resource pattern name operations; do
  [[ -n "$user" ]] || continue
  arguments=()
  for operation in ${operations//,/ }; do
    arguments+=(--operation "$operation")
  done
  kafka kafka-acls.sh --add --allow-principal "User:$user" --resource-pattern-type "$pattern" \
    "--$resource" "$name" "${arguments[@]}" >/dev/null
  echo "acl: $user $operations on $resource $pattern $name"
done

# 3. The event topics and their dead-letter topics, with a bounded retention: events hold
# personal data that erasure cannot reach (README, GDPR). Whole hours here.
retention_ms=$((TOPIC_RETENTION_HOURS * 3600000))
segment_ms=$((retention_ms < 86400000 ? retention_ms : 86400000))
configs="cleanup.policy=delete,retention.ms=$retention_ms,segment.ms=$segment_ms"
for topic in $TOPICS; do
  for name in "$topic" "$topic.dlq"; do
    kafka kafka-topics.sh --create --if-not-exists --topic "$name" \
      --partitions "$TOPIC_PARTITIONS" --replication-factor "$TOPIC_REPLICATION_FACTOR"
    kafka kafka-configs.sh --alter --entity-type topics --entity-name "$name" \
      --add-config "$configs"
  done
done
