"""Kafka plumbing, one concept per module.

- ``connection``: how every client reaches Kafka (brokers, client ids, TLS, SASL), one
  ``partitions_of``;
- ``admin``: topics (event topics with bounded retention, compacted topics);
- ``producer``: the event producer (keyed, traced, size-checked) and dead letters;
- ``processor``: the at-least-once stream processor; ``listener``: its partition listener
  and punctuator hooks;
- ``tasks``: Kafka Streams' task lifecycle of both processors (restore before handling,
  failed restores paused and retried, dirty close on a lost membership);
- ``handling``: the decode → handle → dead-letter step and the retry backoff of both;
- ``topic_route``: how one input topic's records are decoded, handled and traced;
- ``outputs``: a record's outputs or its dead letter, and what the broker refused;
- ``dead_letter``: the dead-letter envelope;
- ``transactional`` (+ ``transactional_producer``): the exactly-once processor of kpi;
- ``single_owner``: the partition assignor of a service with one active instance.
- ``partitioner``: Kafka's default partition of a keyed record, for every producer.
"""
