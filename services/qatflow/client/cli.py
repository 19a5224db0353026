"""``qatflow ask``: question answering or text classification against a running service.

  qatflow ask --url http://127.0.0.1:8080 --question Q --context C
  qatflow ask --url http://127.0.0.1:8080 --text "a text to classify"
  qatflow ask --grpc 127.0.0.1:9000 --protocol kserve --model qa --models-dir models --input q.csv
  qatflow ask ... --iterations 200        # benchmark: p50/p90/p99 latency and throughput

Over HTTP the inputs choose the endpoint (--question/--context or question,context rows: question
answering; --text or text rows: text classification). Over gRPC the published model's manifest
names the task, and the inputs must match it; every request names the published version the
tokenizer comes from, and a server that does not serve it is refused (exit 9).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qatflow.client.errors import EXIT_OK, EXIT_USAGE, exit_codes
from qatflow.client.protocol import DEFAULT_PROTOCOL, PROTOCOLS
from qatflow.core.tasks import QUESTION_ANSWERING, TEXT_CLASSIFICATION

if TYPE_CHECKING:
    from qatflow.client.errors import ClientError
    from qatflow.client.inputs import Inputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    codes = [
        textwrap.fill(
            meaning.replace("`", ""),
            width=99,
            initial_indent=f"  {code:>2}  ",
            subsequent_indent=" " * 6,
        )
        for code, meaning in exit_codes().items()
    ]
    parser.epilog = "\n".join([(__doc__ or "").split("\n\n", 1)[1], "exit codes:", *codes])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", metavar="http://HOST:PORT", help="a qatflow HTTP service")
    target.add_argument(
        "--grpc",
        metavar="HOST:PORT",
        help="gRPC address of OpenVINO Model Server (or another "
        "KServe v2 server, such as MLServer)",
    )
    parser.add_argument(
        "--protocol",
        choices=list(PROTOCOLS),
        default=DEFAULT_PROTOCOL,
        help="gRPC API: kserve (KServe v2, current OVMS; default) or tfs (TF-Serving, older OVMS)",
    )
    parser.add_argument(
        "--model",
        metavar="NAME",
        help="the published model under --models-dir, and its name on the server unless "
        "--served-name says otherwise (gRPC; default: the only model there)",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        metavar="DIR",
        help="published models; the tokenizer is read from here (gRPC)",
    )
    parser.add_argument(
        "--model-version",
        type=_positive_int,
        metavar="N",
        help="the published version to read the tokenizer from and to ask the server for "
        "(gRPC; default: the newest under --models-dir)",
    )
    parser.add_argument(
        "--served-name",
        metavar="NAME",
        help="the model's name on the server, when it differs from --model (gRPC)",
    )
    parser.add_argument("--question", help="the question (question answering)")
    parser.add_argument("--context", help="the text holding the answer (question answering)")
    parser.add_argument("--text", help="the text to classify (text classification)")
    parser.add_argument(
        "--text-pair", metavar="TEXT", help="the second text, for a model of text pairs"
    )
    parser.add_argument(
        "--input",
        type=Path,
        metavar="FILE",
        help="CSV (header question,context or text[,text_pair]) or JSONL of such objects",
    )
    parser.add_argument(
        "--top-k", type=_positive_int, default=1, metavar="K", help="answers or labels per input"
    )
    parser.add_argument(
        "--max-answer-len",
        type=_positive_int,
        metavar="TOKENS",
        help="longest answer in tokens (default: the model's or the service's own)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per answer (answer, score, start, end) or label (label, score)",
    )
    parser.add_argument(
        "--iterations",
        type=_positive_int,
        metavar="N",
        help="benchmark: send N requests (cycling through the questions) and "
        "print p50/p90/p99 latency and throughput",
    )
    parser.add_argument(
        "--warmup",
        type=_non_negative_int,
        default=1,
        metavar="N",
        help="untimed requests before a benchmark (default 1)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="deadline of each request (default 10)",
    )
    parser.add_argument(
        "--retries",
        type=_non_negative_int,
        default=3,
        metavar="N",
        help="retries while the server is unavailable, with exponential backoff (default 3)",
    )


def run(args: argparse.Namespace) -> int:
    from qatflow.client.errors import BadInputError, ClientError

    logging.basicConfig(format="qatflow ask: %(levelname)s: %(message)s", level=logging.WARNING)
    try:
        task, inputs = _read_inputs(args)
    except _UsageError as error:
        return _usage(str(error))
    except BadInputError as error:
        return _fail(error)
    if task == TEXT_CLASSIFICATION and args.max_answer_len is not None:
        return _usage("--max-answer-len applies to question answering only")

    try:
        client = _open_client(args, task)
    except _UsageError as error:
        return _usage(str(error))
    except ClientError as error:
        return _fail(error)
    try:
        send = _sender(client, task, args)
        if args.iterations:
            _benchmark(send, inputs, args)
        else:
            _print_results(send, inputs, task, args)
    except ClientError as error:
        return _fail(error)
    finally:
        client.close()
    return EXIT_OK


class _UsageError(Exception):
    pass


def _read_inputs(args: argparse.Namespace) -> tuple[str, Inputs]:
    """The task the inputs ask for, and the inputs, from --input or the flags."""
    from qatflow.client.inputs import checked_pair, checked_text, read_inputs

    questions = args.question is not None or args.context is not None
    texts = args.text is not None or args.text_pair is not None
    if args.input is not None:
        if questions or texts:
            raise _UsageError("give --input, or --question/--context, or --text; not several")
        return read_inputs(args.input)
    if questions and texts:
        raise _UsageError("give --question/--context or --text, not both")
    if texts:
        if args.text is None:
            raise _UsageError("--text-pair needs --text")
        return TEXT_CLASSIFICATION, [checked_text(args.text, args.text_pair, "command line")]
    if args.question is None or args.context is None:
        raise _UsageError("give --question and --context, or --text, or --input FILE")
    return QUESTION_ANSWERING, [checked_pair(args.question, args.context, "command line")]


def _open_client(args: argparse.Namespace, task: str) -> Any:
    from qatflow.client.retry import RetryPolicy

    retry = RetryPolicy(attempts=args.retries + 1)
    if args.url:
        from qatflow.client.http import HttpQuestionAnswering, HttpTextClassification

        if args.served_name is not None or args.model_version is not None:
            raise _UsageError("--served-name and --model-version apply to --grpc only")

        if not args.url.startswith(("http://", "https://")):
            raise _UsageError(f"--url must start with http:// or https://, got {args.url!r}")
        http = HttpTextClassification if task == TEXT_CLASSIFICATION else HttpQuestionAnswering
        return http(args.url, timeout=args.timeout, retry=retry)

    from qatflow.client.grpc_classification import GrpcTextClassification
    from qatflow.client.grpc_qa import GrpcQuestionAnswering
    from qatflow.client.protocol import connect
    from qatflow.core.artifacts import ArtifactError, find_latest, open_version

    if "://" in args.grpc or ":" not in args.grpc:
        raise _UsageError(f"--grpc takes HOST:PORT, got {args.grpc!r}")
    if args.models_dir is None:
        raise _UsageError(
            "--grpc needs --models-dir (the tokenizer is read from the published model)"
        )
    try:
        version = find_latest(args.models_dir, args.model)
        if version is not None and args.model_version is not None:
            version = open_version(args.models_dir, version.name, args.model_version)
    except ArtifactError as error:
        raise _UsageError(str(error)) from None
    if version is None:
        what = f"model {args.model!r}" if args.model else "model"
        raise _UsageError(f"no published {what} under {args.models_dir}")
    if version.task != task:
        wanted = (
            "--text or text rows"
            if version.task == TEXT_CLASSIFICATION
            else ("--question/--context or question,context rows")
        )
        raise _UsageError(f"model {version.name!r} is a {version.task} model: give {wanted}")
    grpc = GrpcTextClassification if task == TEXT_CLASSIFICATION else GrpcQuestionAnswering
    protocol = connect(args.protocol, args.grpc, timeout=args.timeout)
    client = grpc(protocol, args.served_name or version.name, version, retry=retry)
    try:
        client.check()
    except Exception:
        client.close()
        raise
    return client


def _sender(client: Any, task: str, args: argparse.Namespace) -> Callable[[Any], list[Any]]:
    """One input -> its answers or labels, best first."""
    if task == TEXT_CLASSIFICATION:
        return lambda item: client.classify(item.text, item.text_pair, top_k=args.top_k)
    return lambda item: client.ask(
        item.question, item.context, top_k=args.top_k, max_answer_len=args.max_answer_len
    )


def _print_results(
    send: Callable[[Any], list[Any]], inputs: Inputs, task: str, args: argparse.Namespace
) -> None:
    rows: list[tuple[str, ...]] = []
    item: Any
    for item in inputs:
        started = time.perf_counter()
        results = send(item)
        ms = f"{(time.perf_counter() - started) * 1000.0:.1f}"
        if args.json:
            for result in results:
                print(json.dumps(result.as_dict(), ensure_ascii=False), flush=True)
        else:
            rows += [_row(task, item, result, ms) for result in results]
    if rows:
        _print_table(_HEADERS[task], rows)


_HEADERS = {
    QUESTION_ANSWERING: ("question", "answer", "score", "span", "ms"),
    TEXT_CLASSIFICATION: ("text", "label", "score", "ms"),
}


def _row(task: str, item: Any, result: Any, ms: str) -> tuple[str, ...]:
    if task == TEXT_CLASSIFICATION:
        return (_clip(item.text, 50), result.label, f"{result.score:.4f}", ms)
    span = f"{result.start}-{result.end}"
    return (_clip(item.question, 40), _clip(result.answer, 40), f"{result.score:.4f}", span, ms)


def _print_table(header: tuple[str, ...], cells: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    for row in [header, *cells]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _benchmark(send: Callable[[Any], list[Any]], inputs: Inputs, args: argparse.Namespace) -> None:
    from qatflow.client.bench import summarize

    for index in range(args.warmup):
        send(inputs[index % len(inputs)])
    latencies = []
    started = time.perf_counter()
    for index in range(args.iterations):
        sent = time.perf_counter()
        send(inputs[index % len(inputs)])
        latencies.append(time.perf_counter() - sent)
    summary = summarize(latencies, time.perf_counter() - started)
    print(json.dumps(summary.as_dict()) if args.json else summary.describe())


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _usage(message: str) -> int:
    print(f"qatflow ask: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _fail(error: ClientError) -> int:
    print(f"qatflow ask: {type(error).__name__}: {error}", file=sys.stderr)
    return int(error.exit_code)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value
