"""The API or the worker with a codec that changes nothing: the baseline of the codec
benchmark (bench/codec.py), never a way to run aftersales. Same processes, same code path
through the codec, only no encryption and no data keys.

`python -m bench.unsealed api|worker`"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Sequence

import asyncpg
import uvloop
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

import infra.security.data_converter
import worker
from api.__main__ import serve
from infra.settings import Settings


class PassThroughCodec(PayloadCodec):
    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


def unsealed_data_converter(settings: Settings, pool: asyncpg.Pool) -> DataConverter:
    return dataclasses.replace(pydantic_data_converter, payload_codec=PassThroughCodec())


if __name__ == "__main__":
    infra.security.data_converter.data_converter_for = unsealed_data_converter
    if sys.argv[1:] == ["api"]:
        uvloop.run(serve())
    elif sys.argv[1:] == ["worker"]:
        asyncio.run(worker.main())
    else:
        sys.exit("usage: python -m bench.unsealed api|worker")
