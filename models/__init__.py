"""Records that travel on filestream's topics.

Importing this package registers the ``orjson`` Faust codec the records use.
"""

from typing import Any

import orjson
from faust.serializers import codecs


class OrjsonCodec(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def _loads(self, data: bytes) -> Any:
        return orjson.loads(data)


codecs.register("orjson", OrjsonCodec())
