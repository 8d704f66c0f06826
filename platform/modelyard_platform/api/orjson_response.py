"""JSON answers serialised by orjson: the same compact UTF-8 text as Starlette's ``JSONResponse``.

Starlette renders with ``json.dumps`` (``separators=(",", ":")``, ``ensure_ascii=False``);
orjson writes the same text several times faster, which shows on the chat path (#15).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


__all__ = ["OrjsonResponse"]
