"""The twin's DynamoDB read meter: items read as DynamoDB bills them, by virtual day."""

from __future__ import annotations

from flipbot_dev.twin.reads import DAY_MS, ReadMeter, items_read


def test_items_read_per_operation() -> None:
    assert items_read("GetItem", {"Item": {"k": {"S": "v"}}}) == 1
    assert items_read("GetItem", {}) == 0
    # A Query or Scan reads what it evaluated, whatever its filter kept.
    assert items_read("Query", {"Count": 2, "ScannedCount": 40, "Items": [{}, {}]}) == 40
    assert items_read("Scan", {"Count": 3, "Items": [{}, {}, {}]}) == 3
    assert items_read("BatchGetItem", {"Responses": {"a": [{}, {}], "b": [{}]}}) == 3
    assert items_read("TransactGetItems", {"Responses": [{"Item": {}}, {}]}) == 1
    assert items_read("PutItem", {}) == 0


def test_the_meter_counts_dynamodb_reads_by_day_and_principal() -> None:
    now = [1_000]
    meter = ReadMeter(lambda: now[0], start_ms=1_000)
    meter("ConsultAiFunction", "dynamodb", "GetItem", {"Item": {}})
    meter("ConsultAiFunction", "secretsmanager", "GetSecretValue", {"SecretString": "x"})
    meter("ConsultAiFunction", "dynamodb", "PutItem", {})  # a write: not a read request
    now[0] += 2 * DAY_MS
    meter("ReconcileFunction", "dynamodb", "Query", {"ScannedCount": 5})
    assert meter.summary() == {
        "items": 6,
        "by_day": [1, 0, 5],
        "by_principal": {"ConsultAiFunction": 1, "ReconcileFunction": 5},
        "by_principal_by_day": {"ConsultAiFunction": [1, 0, 0], "ReconcileFunction": [0, 0, 5]},
        "requests_by_principal_by_day": {
            "ConsultAiFunction": [1, 0, 0],
            "ReconcileFunction": [0, 0, 1],
        },
    }
