"""The list and deletion objects: what ``input_items`` and ``DELETE`` answer with.

Sources: reference ``streaming.md`` section 2 (input items, delete) and the ``openai`` client's
``ResponseItemList``. Servers differ on the deletion object's ``object`` (OpenAI's spec example
says ``response``, its current reference ``response.deleted``, Alibaba sends none), so both values
are known and the field is optional.
"""

from __future__ import annotations

from typing import Annotated

from cassette_proxy.contract.base import ContractModel, KnownValues, rebuild_models
from cassette_proxy.contract.items import ListedItem


class InputItemList(ContractModel):
    """``GET /v1/responses/{response_id}/input_items``: one page of the items a response used."""

    object: Annotated[str, KnownValues("list")]
    data: list[ListedItem]
    first_id: str
    last_id: str
    has_more: bool


class DeletedResponse(ContractModel):
    """``DELETE /v1/responses/{response_id}``: which response went, and that it did."""

    id: str
    object: Annotated[str, KnownValues("response", "response.deleted")] | None = None
    deleted: bool


rebuild_models(globals())
