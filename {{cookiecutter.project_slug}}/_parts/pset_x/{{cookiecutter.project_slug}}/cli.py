"""The command line: what the user asked for, top to bottom.

    python -m <package> init                  recreate the index with the event mapping
    python -m <package> generate --count N    store N random events
    python -m <package> query < query.json    run a query and print the answer
    python -m <package> info                  the cluster, its health, the index
    python -m <package> get LOGID             one stored event

Every failure a user can cause ends here as one line on stderr and an exit code:
2 for usage errors, 1 for runtime errors, 130 after Ctrl-C and 143 after SIGTERM.
"""

from __future__ import annotations

import argparse
import codecs
import json
import math
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, BinaryIO, NoReturn

from . import __version__, monitor
from .command_line import EXIT_ERROR, EXIT_OK, ArgumentParser, at_least
from .errors import InputError, PsetError
from .es_logger import ElasticLogger
from .ingest import Ingester
from .log_event import DEFAULT_MASK, EventFactory, Mask, parse_timestamp_mask
from .retry import Retrier, RetryPolicy
from .task_engine import Interrupted, TaskEngine

PROG = f"python -m {__package__}"
# Events per _bulk request (about 320 KB): measured, 500 to 2000 are equally fast and
# bigger batches only cost memory. 1 sends each event on its own.
BATCH_SIZE = 1000
MAX_IN_FLIGHT = 10


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        status = _exit_status(args)
    finally:
        signal.signal(signal.SIGTERM, previous)
    try:
        sys.stdout.flush()  # now: at exit, a reader gone meanwhile would cost exit 120
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_ERROR if status == EXIT_OK else status
    return status


def _exit_status(args: argparse.Namespace) -> int:
    """Run the command; if it did not succeed, say why in one line on stderr."""
    try:
        return args.command(args)
    except PsetError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as interrupt:
        return _interrupted(interrupt)
    except BrokenPipeError as error:
        # Whoever read the output stopped (`... | head`): end quietly. If the pipe
        # broke on the last lines of an interrupted run, the run stays interrupted.
        _discard_stdout()
        if isinstance(error.__context__, KeyboardInterrupt):
            return _interrupted(error.__context__)
        return EXIT_ERROR


def _interrupted(interrupt: KeyboardInterrupt) -> int:
    stop = _as_interrupted(interrupt)
    print(stop, file=sys.stderr)  # "interrupted" or "terminated"
    return 128 + stop.signum


def _as_interrupted(interrupt: KeyboardInterrupt) -> Interrupted:
    """A bare KeyboardInterrupt is Python's own, from Ctrl-C."""
    if isinstance(interrupt, Interrupted):
        return interrupt
    return Interrupted(signal.SIGINT)


def _raise_interrupted(signum: int, frame: object) -> NoReturn:
    """SIGTERM, outside the event loop, stops like Ctrl-C (inside, the engine
    handles both)."""
    raise Interrupted(signum)


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush at exit cannot fail again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


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
    except KeyboardInterrupt as interrupt:
        stopped_by = str(_as_interrupted(interrupt))
        raise
    finally:
        print(ingester.summary(stopped_by))
    return EXIT_OK if ingester.failed == 0 else EXIT_ERROR


def query(args: argparse.Namespace) -> int:
    es = _connect(args, announce=_to_stderr)  # a wrong setting fails before any typing
    if sys.stdin.isatty():
        print(
            f"Reading a query from standard input (end it with Ctrl-D), "
            f"or run: {PROG} query < query1.json",
            file=sys.stderr,
        )
    search = _read_query(sys.stdin.buffer)
    _run(es, partial(es.query, search))
    print("Query finished")
    return EXIT_OK


def info(args: argparse.Namespace) -> int:
    es = _connect(args, announce=_to_stderr)
    report = _run(es, partial(monitor.inspect, es))
    print("\n".join(report.lines()))
    if problem := report.problem():
        raise problem  # a missing index, or one without the event mapping
    return EXIT_OK


def get(args: argparse.Namespace) -> int:
    es = _connect(args, announce=_to_stderr)
    event = _run(es, partial(es.get, args.log_id))
    print(json.dumps(event, indent=2))
    return EXIT_OK


def _read_query(stream: BinaryIO) -> dict[str, Any]:
    """The query object on standard input, read as bytes: strict UTF-8 (a byte order
    mark allowed), then strict JSON (no NaN or Infinity, which Python's json reads
    and Elasticsearch refuses), whatever the locale."""
    data = stream.read()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(
            "the query on standard input is UTF-16, not UTF-8: save the file as UTF-8"
        )
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode()
    except UnicodeDecodeError as error:
        line, column = _position(data[: error.start].decode())
        raise InputError(
            f"the query on standard input is not UTF-8 (byte 0x{data[error.start]:02x} "
            f"at line {line} column {column}): save the file as UTF-8"
        ) from None
    if not text.strip():
        raise InputError(
            f"no query on standard input: pass one, like {PROG} query < query1.json"
        )
    try:
        search = json.loads(
            text, parse_constant=_unreadable, parse_float=_finite, parse_int=_whole
        )
    except json.JSONDecodeError as error:
        raise InputError(
            f"the query on standard input is not valid JSON: {error.msg} at line "
            f"{error.lineno} column {error.colno}"
        ) from None
    except _Unreadable as error:
        line, column = _position(text[: _offset(text, error.token)])
        shown = error.token if len(error.token) <= 20 else error.token[:17] + "..."
        raise InputError(
            f"the query on standard input holds {shown} at line {line} column "
            f"{column}, a number Elasticsearch cannot read: write a finite number"
        ) from None
    except RecursionError:
        raise InputError(
            "the query on standard input is nested too deeply to be read"
        ) from None
    if not isinstance(search, dict):
        raise InputError(
            "the query on standard input must be a JSON object, like "
            f'{{"query": {{"match_all": {{}}}}}}, not {type(search).__name__}'
        )
    return search


class _Unreadable(Exception):
    """A number in the query's JSON that Elasticsearch cannot read."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _unreadable(token: str) -> NoReturn:
    raise _Unreadable(token)  # NaN, Infinity or -Infinity


def _finite(token: str) -> float:
    number = float(token)
    if not math.isfinite(number):  # 1e999 is read as infinity
        raise _Unreadable(token)
    return number


def _whole(token: str) -> int:
    try:
        return int(token)
    except ValueError:  # more digits than Python converts (4300 by default)
        raise _Unreadable(token) from None


# JSON text, a string or a bare token at a time: what stands outside strings.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN|-?[0-9][0-9.eE+-]*)')


def _offset(text: str, token: str) -> int:
    """Where `token` first stands outside a string: the parser reads in order and
    stopped at the first number it could not take, so that is the one."""
    tokens = _JSON_TOKEN.finditer(text)
    return next(found.start(1) for found in tokens if found[1] == token)


def _position(before: str) -> tuple[int, int]:
    """The line and column, from 1, of what follows the text `before`."""
    return before.count("\n") + 1, len(before) - before.rfind("\n")


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


def _run(es: ElasticLogger, call: Callable[[], Awaitable[Any]]) -> Any:
    """Run one call in an engine of its own, for what an engine does however a run
    ends: it closes the connection, and stops on Ctrl-C or SIGTERM."""
    return TaskEngine(logger=es).run(lambda _engine: call())


def _timestamp_mask(text: str) -> Mask:
    try:
        return parse_timestamp_mask(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="Generate random web-log events into Elasticsearch; query them.",
        epilog=(
            "Settings come from the environment or from .env in this folder: "
            "ELASTIC_HOST (the https endpoint, without user or password; a path after "
            "the port is kept, for a cluster behind a proxy) or ELASTIC_CLOUD_ID, "
            "ELASTIC_USERID and ELASTIC_PASSWORD or ELASTIC_API_KEY, ELASTIC_INDEX, "
            "ELASTIC_CA_CERTS (CA file of a local cluster). Exit status: 0 done, "
            "1 error, 2 bad usage, 130 interrupted (Ctrl-C), 143 stopped by SIGTERM."
        ),
    )
    parser.add_argument("--version", action="version", version=__version__)
    seconds = at_least(float, 0.1)
    connection = ArgumentParser(add_help=False)
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
        type=at_least(float, 0),
        default=RetryPolicy.retry_for,
        metavar="SECONDS",
        help="how long a busy or unreachable cluster is retried with backoff while "
        "nothing gets through; each success starts it again (default: %(default)s)",
    )
    commands = parser.add_subparsers(
        title="commands", metavar="{generate,init,query,info,get}", required=True
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
    positive = at_least(int, 1)
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
        description=(
            "Run a query, like: query < query2.json. The query is a JSON object, in "
            "UTF-8."
        ),
    )
    command.set_defaults(command=query)

    command = commands.add_parser(
        "info",
        parents=[connection],
        help="show the cluster, its health, the index and whether its mapping is "
        "the event mapping",
        description=(
            "Show the cluster's name, version and health, then the index "
            "ELASTIC_INDEX: how many documents a search finds in it, and whether "
            "its mapping is the event mapping (if not, which fields differ). Exit "
            "status 1 when the index is missing or its mapping differs."
        ),
    )
    command.set_defaults(command=info)

    command = commands.add_parser(
        "get",
        parents=[connection],
        help="print the stored event of a logID, as JSON",
        description=(
            "Print the event stored under LOGID in the index, as indented JSON. "
            "It is found at once, even before the index is refreshed."
        ),
    )
    command.set_defaults(command=get)
    command.add_argument("log_id", metavar="LOGID", help="the event's logID")
    return parser
