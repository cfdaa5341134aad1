"""Contender 5, the floor: the package's own generation and bulk serialisation, no
network.

Batches of the CLI's default size go through `EventFactory.documents` and the ingest
module's bulk body builder, and the bytes are dropped. Whatever ours costs above this
is the price of talking to Elasticsearch.
"""

from __future__ import annotations

from common import arguments
from pset_x.cli import BATCH_SIZE
from pset_x.ingest import _bulk_body
from pset_x.log_event import EventFactory


def generate(count: int, batch_size: int = BATCH_SIZE) -> None:
    factory = EventFactory()
    for first in range(0, count, batch_size):
        _bulk_body(factory.documents(min(batch_size, count - first)))


def main() -> None:
    generate(arguments(__doc__.splitlines()[0]).parse_args().count)


if __name__ == "__main__":
    main()
