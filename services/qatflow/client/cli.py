"""``qatflow ask``: question answering against a running service, HTTP or gRPC.

  qatflow ask --url http://127.0.0.1:8080 --question Q --context C
  qatflow ask --grpc 127.0.0.1:9000 --protocol kserve --model qa --models-dir models --input q.csv
  qatflow ask ... --iterations 200        # benchmark: p50/p90/p99 latency and throughput

Exit codes: 0 answered, 2 usage, 3 bad input (file or question), 4 server unavailable,
5 model not found, 6 input/shape/dtype mismatch or request refused, 7 deadline exceeded,
8 other server error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from qatflow.client.errors import ClientError
    from qatflow.client.inputs import QuestionPair
    from qatflow.core.qa import Answer

EXIT_OK = 0
EXIT_USAGE = 2


class QuestionAnswering(Protocol):
    """What both the HTTP and the gRPC clients offer."""

    def ask(
        self, question: str, context: str, *, top_k: int = 1, max_answer_len: int | None = None
    ) -> list[Answer]: ...

    def close(self) -> None: ...


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 1)[1] if __doc__ else None
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", metavar="http://HOST:PORT", help="a qatflow HTTP service")
    target.add_argument("--grpc", metavar="HOST:PORT", help="OpenVINO Model Server gRPC address")
    parser.add_argument(
        "--protocol",
        choices=["kserve", "tfs"],
        default="kserve",
        help="gRPC API: kserve (KServe v2, current OVMS; default) or tfs (TF-Serving, older OVMS)",
    )
    parser.add_argument(
        "--model",
        metavar="NAME",
        help="served model name (gRPC; default: the only model under --models-dir)",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        metavar="DIR",
        help="published models; the tokenizer is read from here (gRPC)",
    )
    parser.add_argument("--question", help="the question")
    parser.add_argument("--context", help="the text holding the answer")
    parser.add_argument(
        "--input",
        type=Path,
        metavar="FILE",
        help="CSV (header question,context) or JSONL of questions",
    )
    parser.add_argument("--top-k", type=_positive_int, default=1, metavar="K")
    parser.add_argument(
        "--max-answer-len",
        type=_positive_int,
        metavar="TOKENS",
        help="longest answer in tokens (default: the model's or the service's own)",
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per answer: answer, score, start, end"
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
    from qatflow.client.inputs import checked_pair, read_pairs

    try:
        if args.input is not None:
            if args.question or args.context:
                return _usage("give --input or --question/--context, not both")
            pairs = read_pairs(args.input)
        elif args.question is None or args.context is None:
            return _usage("give --question and --context, or --input FILE")
        else:
            pairs = [checked_pair(args.question, args.context, "command line")]
    except BadInputError as error:
        return _fail(error)

    try:
        client = _open_client(args)
    except _UsageError as error:
        return _usage(str(error))
    except ClientError as error:
        return _fail(error)
    try:
        if args.iterations:
            _benchmark(client, pairs, args)
        else:
            _answer(client, pairs, args)
    except ClientError as error:
        return _fail(error)
    finally:
        client.close()
    return EXIT_OK


class _UsageError(Exception):
    pass


def _open_client(args: argparse.Namespace) -> QuestionAnswering:
    from qatflow.client.retry import RetryPolicy

    retry = RetryPolicy(attempts=args.retries + 1)
    if args.url:
        from qatflow.client.http import HttpQuestionAnswering

        if not args.url.startswith(("http://", "https://")):
            raise _UsageError(f"--url must start with http:// or https://, got {args.url!r}")
        return HttpQuestionAnswering(args.url, timeout=args.timeout, retry=retry)

    from qatflow.client.grpc_qa import GrpcQuestionAnswering
    from qatflow.client.protocol import connect
    from qatflow.core.artifacts import ArtifactError, find_latest

    if "://" in args.grpc or ":" not in args.grpc:
        raise _UsageError(f"--grpc takes HOST:PORT, got {args.grpc!r}")
    if args.models_dir is None:
        raise _UsageError(
            "--grpc needs --models-dir (the tokenizer is read from the published model)"
        )
    try:
        version = find_latest(args.models_dir, args.model)
    except ArtifactError as error:
        raise _UsageError(str(error)) from None
    if version is None:
        what = f"model {args.model!r}" if args.model else "model"
        raise _UsageError(f"no published {what} under {args.models_dir}")
    protocol = connect(args.protocol, args.grpc, timeout=args.timeout)
    client = GrpcQuestionAnswering(protocol, args.model or version.name, version, retry=retry)
    try:
        client.check()
    except Exception:
        client.close()
        raise
    return client


def _answer(client: QuestionAnswering, pairs: list[QuestionPair], args: argparse.Namespace) -> None:
    rows: list[tuple[str, Answer, float]] = []
    for pair in pairs:
        started = time.perf_counter()
        answers = client.ask(
            pair.question, pair.context, top_k=args.top_k, max_answer_len=args.max_answer_len
        )
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        if args.json:
            for answer in answers:
                print(json.dumps(answer.as_dict(), ensure_ascii=False), flush=True)
        else:
            rows.extend((pair.question, answer, elapsed_ms) for answer in answers)
    if rows:
        _print_table(rows)


def _print_table(rows: list[tuple[str, Answer, float]]) -> None:
    header = ("question", "answer", "score", "span", "ms")
    cells = [
        (_clip(q, 40), _clip(a.answer, 40), f"{a.score:.4f}", f"{a.start}-{a.end}", f"{ms:.1f}")
        for q, a, ms in rows
    ]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    for row in [header, *cells]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _benchmark(
    client: QuestionAnswering, pairs: list[QuestionPair], args: argparse.Namespace
) -> None:
    from qatflow.client.bench import summarize

    def ask(index: int) -> None:
        pair = pairs[index % len(pairs)]
        client.ask(
            pair.question, pair.context, top_k=args.top_k, max_answer_len=args.max_answer_len
        )

    for index in range(args.warmup):
        ask(index)
    latencies = []
    started = time.perf_counter()
    for index in range(args.iterations):
        sent = time.perf_counter()
        ask(index)
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
