"""Register the cases' custom search attributes on a Temporal server (idempotent).

The dev server gets them as start-up flags; the time-skipping server and a production
cluster (see docker-compose.yml) get them through the operator API, with this module:
`python -m infra.search_attribute_setup`."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.service import RPCError, RPCStatusCode

from infra.settings import load_settings
from infra.temporal_client import connect_for_operations
from workflows import search_attributes

_INDEXED_TYPE = {
    SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SearchAttributeIndexedValueType.DATETIME: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    SearchAttributeIndexedValueType.BOOL: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
}


async def register_search_attributes(client: Client) -> None:
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={
                    key.name: _INDEXED_TYPE[key.indexed_value_type] for key in search_attributes.ALL
                },
            )
        )
    except RPCError as error:
        if error.status is not RPCStatusCode.ALREADY_EXISTS:
            raise


async def main() -> None:
    settings = load_settings()
    client = await connect_for_operations(settings)
    await register_search_attributes(client)
    print("search attributes:", ", ".join(key.name for key in search_attributes.ALL))


if __name__ == "__main__":
    asyncio.run(main())
