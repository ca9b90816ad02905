"""The API or the worker with a codec that changes nothing: the baseline of the codec
benchmark (bench/codec.py), never a way to run aftersales. Same processes, same code path
through the codec, only no encryption: payloads pass through as they are. The codec is
still the sealing one's kind (its key ring, its data keys made and stored with a case's
request), because the gateway builds on it (tracking numbers' keyed hash, an opening's
data key in the request's own statement): the baseline leaves out the sealing, not the
gateway's statements.

`python -m bench.unsealed api|worker`"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Sequence
from typing import Self

import asyncpg
import uvloop
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, SerializationContext

import infra.security.data_converter
import worker
from api.__main__ import serve
from infra.security.codec import SealingCodec
from infra.security.data_converter import key_ring
from infra.security.data_keys import PostgresDataKeys
from infra.settings import Settings


class PassThroughCodec(SealingCodec):
    def with_context(self, context: SerializationContext) -> Self:
        return self

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


def unsealed_data_converter(settings: Settings, pool: asyncpg.Pool) -> DataConverter:
    ring = key_ring(settings)
    codec = PassThroughCodec(ring, PostgresDataKeys(pool, ring))
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


if __name__ == "__main__":
    infra.security.data_converter.data_converter_for = unsealed_data_converter
    if sys.argv[1:] == ["api"]:
        uvloop.run(serve())
    elif sys.argv[1:] == ["worker"]:
        asyncio.run(worker.main())
    else:
        sys.exit("usage: python -m bench.unsealed api|worker")
