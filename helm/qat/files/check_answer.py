# Run by the `helm test` pod: python -c <this> <qatflow ask target arguments>.
# Asks one question and exits non-zero unless the service gives the expected answer.
import json
import os
import subprocess
import sys

command = [sys.executable, "-m", "qatflow.cli", "ask", *sys.argv[1:]]
command += ["--question", os.environ["QUESTION"], "--context", os.environ["CONTEXT"], "--json"]
print("$", " ".join(command), flush=True)
result = subprocess.run(command, capture_output=True, text=True, timeout=90)
print(result.stdout, end="")
print(result.stderr, end="", file=sys.stderr)
if result.returncode != 0:
    sys.exit(f"FAIL: qatflow ask exited with {result.returncode}")
lines = [line for line in result.stdout.splitlines() if line.strip().startswith("{")]
if not lines:
    sys.exit("FAIL: no answer in the output of qatflow ask")
answer = str(json.loads(lines[-1]).get("answer", "")).strip()
expected = os.environ["EXPECTED_ANSWER"].strip()
if answer.lower() != expected.lower():
    sys.exit(f"FAIL: answer {answer!r}, expected {expected!r}")
print(f"PASS: answer {answer!r}")
