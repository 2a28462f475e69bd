"""Result and notice ids are a contract: outside readers de-duplicate by them. The literals
below were computed once with the standard library's uuid module from the documented
recipe (UUIDv5 in the namespace uuid5(NAMESPACE_URL, "mmstream:result") of
"<analysis@version>\\n<alert id>\\n<revision>", plus "\\nrole=test" for test alerts; a
notice's id is uuid5(result id, "notice")), and must never change."""

from __future__ import annotations

import uuid

from mmstream.provenance.headers import RESULT_NAMESPACE, notice_id, result_id

LABEL, ALERT, REVISION = (
    "temporal_coincidence@1.0.0",
    "S190425z",
    "PRELIMINARY@2019-04-25T08:18:26Z",
)


def test_the_namespace_is_the_documented_one() -> None:
    assert uuid.UUID("c0b066d4-28ee-570d-a8e0-bb76f6c0af49") == RESULT_NAMESPACE


def test_an_observations_result_id_is_pinned() -> None:
    assert result_id(LABEL, ALERT, REVISION) == uuid.UUID("9b080828-8229-5ae0-b281-ddd55c5de6de")


def test_a_test_alerts_result_id_differs_and_is_pinned() -> None:
    assert result_id(LABEL, ALERT, REVISION, "test") == uuid.UUID(
        "912a4378-f571-52d0-8ba5-86d404e8c7b3"
    )


def test_a_notices_id_is_its_own_and_derived_from_the_result() -> None:
    rid = uuid.UUID("9b080828-8229-5ae0-b281-ddd55c5de6de")
    assert notice_id(rid) == uuid.UUID("daf87e61-4db9-5831-a2e6-b84a3ddf17a1") != rid
