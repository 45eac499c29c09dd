"""The local stack: real Kafka and MongoDB-protocol servers and the five services as processes.

Used by ``bin/demo`` and by the integration and end-to-end tests.
"""
