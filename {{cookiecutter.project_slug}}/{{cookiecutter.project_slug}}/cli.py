"""The command line: what the user asked for, top to bottom.

    python -m pset_x init                  recreate the index with the event mapping
    python -m pset_x generate --count N    store N random events
    python -m pset_x query < query.json    run a query and print the answer

Every failure a user can cause ends here as one line on stderr and an exit code:
2 for usage errors, 1 for runtime errors, 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, NoReturn, TextIO

from . import __version__
from .errors import InputError, PsetError
from .es_logger import ElasticLogger, Response
from .ingest import Ingester
from .log_event import DEFAULT_MASK, EventFactory, Mask, parse_timestamp_mask
from .retry import Retrier, RetryPolicy
from .task_engine import TaskEngine

PROG = f"python -m {__package__}"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
# Events per _bulk request (about 320 KB): measured, 500 to 2000 are equally fast and
# bigger batches only cost memory. 1 sends each event on its own.
BATCH_SIZE = 1000
MAX_IN_FLIGHT = 10


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except PsetError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whoever read the output stopped (`... | head`): end quietly, with stdout
        # pointed at /dev/null so that Python's flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR


def init(args: argparse.Namespace) -> int:
    es = _connect(args, announce=_to_stderr)
    _run(es, es.init_schema)
    print("Schema generated")
    return EXIT_OK


def generate(args: argparse.Namespace) -> int:
    es = _connect(args, max_connections=args.max_in_flight)
    ingester = Ingester(es, args.count)
    engine = TaskEngine(
        max_tasks=args.max_in_flight, monitor=True, logger=es, note=es.retrier.status
    )
    events = EventFactory(args.timestamp)
    driver = partial(ingester.ingest, events=events, batch_size=args.batch_size)
    stopped_by = "stopped by an error"
    try:
        engine.run(driver)
        stopped_by = ""
        if ingester.unrefreshed is not None:
            print(
                f"warning: the index could not be refreshed "
                f"({ingester.unrefreshed.brief}): the events are stored all the same, "
                "and searchable after the cluster's next automatic refresh (about 1 s)",
                file=sys.stderr,
            )
    except KeyboardInterrupt:
        stopped_by = "interrupted"
        raise
    finally:
        print(ingester.summary(stopped_by))
    return EXIT_OK if ingester.failed == 0 else EXIT_ERROR


def query(args: argparse.Namespace) -> int:
    if sys.stdin.isatty():
        print(
            f"Reading a query from standard input (end it with Ctrl-D), "
            f"or run: {PROG} query < query1.json",
            file=sys.stderr,
        )
    search = _read_query(sys.stdin)
    es = _connect(args, announce=_to_stderr)
    _run(es, partial(es.query, search))
    print("Query finished")
    return EXIT_OK


def _read_query(stream: TextIO) -> dict[str, Any]:
    text = stream.read()
    if not text.strip():
        raise InputError(
            f"no query on standard input: pass one, like {PROG} query < query1.json"
        )
    try:
        search = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(
            f"the query on standard input is not valid JSON: {error.msg} at line "
            f"{error.lineno} column {error.colno}"
        ) from None
    if not isinstance(search, dict):
        raise InputError(
            "the query on standard input must be a JSON object, like "
            f'{{"query": {{"match_all": {{}}}}}}, not {type(search).__name__}'
        )
    return search


def _connect(
    args: argparse.Namespace,
    *,
    announce: Callable[[str], None] | None = None,
    **options: Any,
) -> ElasticLogger:
    """The logger the options describe; `announce` is told of each retry."""
    retrier = Retrier(RetryPolicy(retry_for=args.retry_for), announce=announce)
    return ElasticLogger(
        timeout=args.timeout,
        connect_timeout=args.connect_timeout,
        retrier=retrier,
        **options,
    )


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _run(es: ElasticLogger, call: Callable[[], Awaitable[Response]]) -> Response:
    """Run one call in a fresh event loop, closing the connection afterwards."""

    async def closing() -> Response:
        async with es:
            return await call()

    return asyncio.run(closing())


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, not the usage block: what is wrong and where to read more."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _at_least(kind: type[int] | type[float], lowest: float) -> Callable[[str], Any]:
    """An argparse type: a number of `kind`, at least `lowest`, or a clear refusal."""
    what = "a whole number" if kind is int else "a number"

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value < lowest:
            raise argparse.ArgumentTypeError(
                f"must be {what} >= {lowest}, not {text!r}"
            )
        return value

    return convert


def _timestamp_mask(text: str) -> Mask:
    try:
        return parse_timestamp_mask(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog=PROG,
        description="Generate random web-log events into Elasticsearch; query them.",
        epilog=(
            "Settings come from the environment or from .env in this folder: "
            "ELASTIC_HOST (https endpoint) or ELASTIC_CLOUD_ID, ELASTIC_USERID and "
            "ELASTIC_PASSWORD or ELASTIC_API_KEY, ELASTIC_INDEX, ELASTIC_CA_CERTS (CA "
            "file of a local cluster). Exit status: 0 done, 1 error, 2 bad usage, "
            "130 interrupted."
        ),
    )
    parser.add_argument("--version", action="version", version=__version__)
    seconds = _at_least(float, 0.1)
    connection = _ArgumentParser(add_help=False)
    connection.add_argument(
        "--timeout",
        type=seconds,
        default=60.0,
        metavar="SECONDS",
        help="longest a request may take, answer included (default: %(default)s)",
    )
    connection.add_argument(
        "--connect-timeout",
        type=seconds,
        default=10.0,
        metavar="SECONDS",
        help="longest to wait for a connection (default: %(default)s)",
    )
    connection.add_argument(
        "--retry-for",
        type=_at_least(float, 0),
        default=RetryPolicy.retry_for,
        metavar="SECONDS",
        help="how long a busy or unreachable cluster is retried with backoff while "
        "nothing gets through; each success starts it again (default: %(default)s)",
    )
    commands = parser.add_subparsers(
        title="commands", metavar="{generate,init,query}", required=True
    )

    command = commands.add_parser(
        "generate",
        parents=[connection],
        help="store random log events, at most 10 requests in flight",
        description=(
            "Store COUNT random log events, each under its own id so that retries "
            "never duplicate one. Busy or unreachable clusters are retried with "
            "backoff; the last line says how many events were stored."
        ),
    )
    command.set_defaults(command=generate)
    positive = _at_least(int, 1)
    command.add_argument(
        "--count",
        type=positive,
        default=1,
        metavar="N",
        help="how many events (default: %(default)s)",
    )
    command.add_argument(
        "--batch-size",
        type=positive,
        default=BATCH_SIZE,
        metavar="N",
        help="events per bulk request; 1 sends one request per event "
        "(default: %(default)s)",
    )
    command.add_argument(
        "--max-in-flight",
        type=positive,
        default=MAX_IN_FLIGHT,
        metavar="N",
        help="requests in flight at most (default: %(default)s)",
    )
    command.add_argument(
        "--timestamp",
        type=_timestamp_mask,
        default=DEFAULT_MASK,
        metavar="MASK",
        help=(
            "event times: Y-M-D, T or a space, H:M:S; any part may be ?, the date "
            "'today' and the time 'now' (default: %(default)s)"
        ),
    )

    command = commands.add_parser(
        "init",
        parents=[connection],
        help="delete the index if it exists, then create it with the event mapping",
        description=(
            "Delete the index ELASTIC_INDEX if it exists -- all its documents are "
            "lost, and the command says how many -- then create it with the mapping "
            "of the log events."
        ),
    )
    command.set_defaults(command=init)

    command = commands.add_parser(
        "query",
        parents=[connection],
        help="run the query DSL object on standard input and print the answer",
        description="Run a query, like: query < query2.json",
    )
    command.set_defaults(command=query)
    return parser
