# Run by the `helm test` pod: python -c <this> <qatflow ask target arguments>.
# Asks one question (QUESTION, CONTEXT) or has one text classified (TEXT, TEXT_PAIR) and exits
# non-zero unless the service gives the expected answer or label.
import json
import os
import subprocess
import sys

command = [sys.executable, "-m", "qatflow.cli", "ask", *sys.argv[1:]]
if "TEXT" in os.environ:
    command += ["--text", os.environ["TEXT"]]
    if os.environ.get("TEXT_PAIR"):
        command += ["--text-pair", os.environ["TEXT_PAIR"]]
    field, expected = "label", os.environ["EXPECTED_LABEL"].strip()
else:
    command += ["--question", os.environ["QUESTION"], "--context", os.environ["CONTEXT"]]
    field, expected = "answer", os.environ["EXPECTED_ANSWER"].strip()
command.append("--json")
print("$", " ".join(command), flush=True)
result = subprocess.run(command, capture_output=True, text=True, timeout=90)
print(result.stdout, end="")
print(result.stderr, end="", file=sys.stderr)
if result.returncode != 0:
    sys.exit(f"FAIL: qatflow ask exited with {result.returncode}")
lines = [line for line in result.stdout.splitlines() if line.strip().startswith("{")]
if not lines:
    sys.exit(f"FAIL: no {field} in the output of qatflow ask")
given = str(json.loads(lines[-1]).get(field, "")).strip()
if given.lower() != expected.lower():
    sys.exit(f"FAIL: {field} {given!r}, expected {expected!r}")
print(f"PASS: {field} {given!r}")
