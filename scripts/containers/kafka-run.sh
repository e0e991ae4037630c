#!/bin/bash
# Entry point of the local Kafka image. Defaults: one KRaft node, PLAINTEXT on :9092,
# CONTROLLER on :9093, advertised as localhost:9092 (as apache/kafka without settings).
# Every KAFKA_* variable overrides one property the way the apache/kafka image reads them:
# KAFKA_ stripped, lower case, "___" -> "-", "__" -> "_", "_" -> ".".
set -euo pipefail
props=/opt/kafka/config/server.properties
declare -A conf=(
  [node.id]=1
  [process.roles]=broker,controller
  [controller.quorum.voters]=1@localhost:9093
  [listeners]=PLAINTEXT://:9092,CONTROLLER://:9093
  [advertised.listeners]=PLAINTEXT://localhost:9092
  [controller.listener.names]=CONTROLLER
  [listener.security.protocol.map]=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
  [log.dirs]=/var/lib/kafka/data
  [num.partitions]=1
  [offsets.topic.replication.factor]=1
  [transaction.state.log.replication.factor]=1
  [transaction.state.log.min.isr]=1
  [share.coordinator.state.topic.replication.factor]=1
  [share.coordinator.state.topic.min.isr]=1
  [group.initial.rebalance.delay.ms]=0
)
not_properties=" KAFKA_HEAP_OPTS KAFKA_OPTS KAFKA_JVM_PERFORMANCE_OPTS KAFKA_LOG4J_OPTS KAFKA_JMX_OPTS KAFKA_GC_LOG_OPTS KAFKA_VERSION "
while IFS='=' read -r name value; do
  [[ "$name" == KAFKA_* && "$not_properties" != *" $name "* ]] || continue
  key="$(sed -e 's/^KAFKA_//' -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g' <<<"$name" | tr 'A-Z' 'a-z')"
  conf[$key]="$value"
done < <(env)
: >"$props"
for key in "${!conf[@]}"; do printf '%s=%s\n' "$key" "${conf[$key]}" >>"$props"; done

java=(java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} ${KAFKA_OPTS:-} -Djava.awt.headless=true
  -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties -cp '/opt/kafka/libs/*')
"${java[@]}" kafka.tools.StorageTool format --ignore-formatted --config "$props" \
  --cluster-id "${CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}" >/dev/null
exec "${java[@]}" kafka.Kafka "$props"
