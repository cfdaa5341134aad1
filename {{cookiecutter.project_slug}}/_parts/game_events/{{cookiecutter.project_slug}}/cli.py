"""The command line: what the user asked for, top to bottom.

    python -m <package> serve             the game API; every action becomes an event
    python -m <package> load PATH...      ApacheBench-style load on it
    python -m <package> land              the events not landed yet, into the lake
    python -m <package> query "SQL"       SQL over the lake's tables

Every failure a user can cause ends here as one line on stderr and an exit code:
2 for usage errors, 1 for runtime errors, 130 after Ctrl-C and 143 after SIGTERM
(`serve` is stopped that way as a rule, and then exits 0 once it has drained).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence

from aiohttp import web

from . import __version__
from .api import make_app
from .broker import open_broker
from .command_line import EXIT_ERROR, EXIT_OK, ArgumentParser, at_least
from .errors import InputError, PsetError
from .load import Load, Plan, checked_url
from .settings import Settings
from .task_engine import Interrupted, TaskEngine

NOT_ON_WINDOWS = "error: this project runs on Linux and macOS; on Windows, use WSL"

PROG = f"python -m {__package__}"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if sys.platform == "win32":
        # The event log and the lake lock files and signal processes the POSIX way.
        print(NOT_ON_WINDOWS, file=sys.stderr)
        return EXIT_ERROR
    try:
        return args.command(args)
    except PsetError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as interrupt:  # the engine's Interrupted, or Python's
        signum = getattr(interrupt, "signum", signal.SIGINT)
        print(Interrupted(signum), file=sys.stderr)  # "interrupted" or "terminated"
        return 128 + signum
    except BrokenPipeError:
        # Whoever read the output stopped (`query ... | head`): end quietly, with
        # stdout pointed at /dev/null so that Python's flush at exit cannot fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR


def serve(args: argparse.Namespace) -> int:
    settings = Settings.load()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr
    )
    asyncio.run(_serve(settings, args.host, args.port))
    return EXIT_OK


async def _serve(settings: Settings, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, then drain: the runner stops taking requests
    and waits for those in flight (their events sent), then the broker is closed,
    which flushes and seals what it holds."""
    broker = open_broker(settings, f"{socket.gethostname()}:{port}")
    await broker.start()  # a broker that cannot be reached fails before the port opens
    try:
        runner = web.AppRunner(make_app(broker))
        await runner.setup()
        try:
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as error:
                raise InputError(
                    f"cannot listen on {host}:{port} ({error.strerror}): is another "
                    "server running there? stop it, or choose another --port"
                ) from None
            target = (
                f"Kafka at {settings.kafka_bootstrap_servers}, topic "
                f"{settings.kafka_topic}"
                if settings.kafka_bootstrap_servers
                else f"the event log in {settings.events_dir}"
            )
            print(f"Serving on http://{host}:{port}, events to {target}", flush=True)
            print("Ctrl-C stops", file=sys.stderr, flush=True)
            await _stop_signal()
            print("Stopping: finishing the requests in flight", file=sys.stderr)
        finally:
            await runner.cleanup()
    finally:
        await broker.close()


async def _stop_signal() -> int:
    """Wait for SIGINT or SIGTERM, the first one only: a second one, once the
    handlers are gone, interrupts the drain as Python does by default."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[int] = loop.create_future()

    def stop(signum: int) -> None:
        if not received.done():
            received.set_result(signum)

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop, signum)
    try:
        return await received
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


def load(args: argparse.Namespace) -> int:
    plan = Plan(
        url=checked_url(args.url),
        paths=args.paths,
        requests=args.requests,
        method=args.method,
        host_header=args.host_header,
        players=args.players,
        timeout=args.timeout,
    )
    run = Load(plan)
    engine = TaskEngine(max_tasks=args.concurrency, monitor=True)
    try:
        engine.run(run.drive)
    finally:
        if run.latencies or run.failures:
            print(run.report())
    run.check()
    return EXIT_OK


def land(args: argparse.Namespace) -> int:
    from .landing import land as land_events  # B's module, and its engines' imports

    settings = Settings.load()
    report = land_events(
        settings, engine=args.engine, stream=args.stream, progress=sys.stderr
    )
    print(report.summary())
    return EXIT_OK


def query(args: argparse.Namespace) -> int:
    from .query import run_query

    settings = Settings.load()
    sql = args.sql
    if sql is None:
        if sys.stdin.isatty():
            print(
                "Reading SQL from standard input (end it with Ctrl-D), or run: "
                f"{PROG} query 'SELECT ...'",
                file=sys.stderr,
            )
        sql = sys.stdin.read()
    run_query(settings, sql, output_format=args.format, out=sys.stdout)
    return EXIT_OK


def _port(text: str) -> int:
    port = at_least(int, 1)(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"must be a port, 1 to 65535, not {text!r}")
    return port


def _path(text: str) -> str:
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError(
            f"must start with /, like /purchase/sword, not {text!r}"
        )
    return text


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="A game API whose every action is an event; land them, query them.",
        epilog=(
            "Settings come from the environment or from .env in this folder: "
            "EVENTS_DIR, LAKE_DIR, KAFKA_BOOTSTRAP_SERVERS (empty: the local event "
            "log), KAFKA_TOPIC, SPARK_MASTER. Exit status: 0 done, 1 error, 2 bad "
            "usage, 130 interrupted (Ctrl-C), 143 stopped by SIGTERM."
        ),
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(
        title="commands", metavar="{serve,load,land,query}", required=True
    )

    command = commands.add_parser(
        "serve",
        help="run the game API; every action emits one event",
        description=(
            "Run the game API. Each action's event is with the broker (the local "
            "event log, or Kafka) before the action is answered. Ctrl-C or SIGTERM "
            "drains the requests in flight and exits 0."
        ),
    )
    command.set_defaults(command=serve)
    command.add_argument("--host", default="127.0.0.1", help="(default: %(default)s)")
    command.add_argument(
        "--port", type=_port, default=5000, help="(default: %(default)s)"
    )

    command = commands.add_parser(
        "load",
        help="ApacheBench-style load on the API",
        description=(
            "Send N requests to the PATHs in turn, at most C at once, and report "
            "the requests per second, latency percentiles and the count per status. "
            "Exits 1 if any request got no answer or a server error (5xx)."
        ),
    )
    command.set_defaults(command=load)
    positive = at_least(int, 1)
    command.add_argument("paths", nargs="+", type=_path, metavar="PATH")
    command.add_argument(
        "--url", default="http://127.0.0.1:5000", help="(default: %(default)s)"
    )
    command.add_argument(
        "--requests",
        "-n",
        type=positive,
        default=1,
        metavar="N",
        help="how many requests (default: %(default)s)",
    )
    command.add_argument(
        "--concurrency",
        "-c",
        type=positive,
        default=1,
        metavar="C",
        help="requests in flight at most (default: %(default)s)",
    )
    command.add_argument(
        "--method",
        "-m",
        type=str.upper,
        default="GET",
        help="(default: %(default)s; actions need POST)",
    )
    command.add_argument(
        "--host-header", "-H", metavar="H", help="the Host header to send"
    )
    command.add_argument(
        "--players",
        type=at_least(int, 0),
        default=0,
        metavar="K",
        help="sign up and log in K new players first, and send the requests with "
        "their sessions in turn (default: %(default)s, no session)",
    )
    command.add_argument(
        "--timeout",
        type=at_least(float, 0.001),
        default=30.0,
        metavar="SECONDS",
        help="longest a request may take (default: %(default)s)",
    )

    command = commands.add_parser(
        "land",
        help="land the events not landed yet as tables in the lake",
        description=(
            "Read every event not landed yet and add it to the tables under "
            "LAKE_DIR, once: landing again adds no duplicate. Malformed events go to "
            "the quarantine table, with the reason."
        ),
    )
    command.set_defaults(command=land)
    command.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        default="duckdb",
        help="(default: %(default)s)",
    )
    command.add_argument(
        "--stream",
        action="store_true",
        help="keep landing new events as they come, until Ctrl-C",
    )

    command = commands.add_parser(
        "query",
        help="run SQL over the lake's tables",
        description=(
            "Run SQL over the tables visits, accounts, purchases, guild_events and "
            "quarantine: from the argument, or standard input (query < queries/x.sql)."
        ),
    )
    command.set_defaults(command=query)
    command.add_argument("sql", nargs="?", metavar="SQL")
    command.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="(default: %(default)s)",
    )
    return parser
