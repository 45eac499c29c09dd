"""Which failures to produce a record's outputs are final (dead letter) or transient."""

from __future__ import annotations

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotEnoughReplicasError,
    OutOfOrderSequenceNumber,
    RecordListTooLargeError,
)
from google.protobuf.message import EncodeError

from socialcrm import contract
from socialcrm.kafka.outputs import output_rejection


@pytest.mark.parametrize(
    ("failure", "error_type"),
    [
        (MessageSizeTooLargeError(), "output_too_large"),
        (RecordListTooLargeError(), "output_too_large"),
        (EncodeError("missing required fields"), "output_not_encodable"),
        (OverflowError("date value out of range"), "output_not_encodable"),
        (ValueError("bad value"), "output_not_encodable"),
        (LookupError("no topic option"), "output_not_encodable"),
        (contract.ContractError("output_too_large", "over the limit"), "output_too_large"),
    ],
)
def test_failures_no_retry_can_fix_are_dead_lettered_with_their_kind(
    failure: Exception, error_type: str
) -> None:
    rejection = output_rejection(failure)
    assert rejection is not None
    assert rejection.error_type == error_type
    assert type(failure).__name__ in rejection.reason or rejection is failure


@pytest.mark.parametrize(
    "failure",
    [
        KafkaTimeoutError(),
        KafkaConnectionError(),
        NotEnoughReplicasError(),
        OutOfOrderSequenceNumber(),
    ],
)
def test_broker_and_client_failures_are_transient(failure: Exception) -> None:
    assert output_rejection(failure) is None
