"""Run the Autobahn|Testsuite fuzzing client against hybrid's asgi worker.

Not part of `make test`: autobahntestsuite needs Python 2.7. Set it up once:

    ~/.pyenv/versions/2.7.18/bin/python -m pip install virtualenv
    ~/.pyenv/versions/2.7.18/bin/python -m virtualenv /tmp/ab27
    /tmp/ab27/bin/pip install autobahntestsuite

then: python tests/autobahn/run.py [--wstest /tmp/ab27/bin/wstest] [--cases 1.* 2.* ...]

Prints, per section, how many cases passed and which did not.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*", "12.*", "13.*"]
OK = {"OK", "NON-STRICT", "INFORMATIONAL"}


def main() -> int:
    options = argparse.ArgumentParser()
    options.add_argument("--wstest", default="/tmp/ab27/bin/wstest")
    options.add_argument("--cases", nargs="*", default=SECTIONS)
    args = options.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "hybrid", "run", "tests.autobahn.echo:app", "-k", "asgi",
         "-b", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)
    try:
        time.sleep(2)
        with tempfile.TemporaryDirectory() as work:
            spec = {"outdir": f"{work}/reports", "cases": args.cases, "exclude-cases": [],
                    "exclude-agent-cases": {},
                    "servers": [{"agent": "hybrid", "url": f"ws://127.0.0.1:{port}"}]}
            Path(work, "spec.json").write_text(json.dumps(spec))
            subprocess.run([args.wstest, "-m", "fuzzingclient", "-s", "spec.json"], cwd=work,
                           check=True, stdout=subprocess.DEVNULL)
            results = json.loads(Path(work, "reports", "index.json").read_text())["hybrid"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    passed: Counter[str] = Counter()
    failed: dict[str, list[str]] = defaultdict(list)
    for case, result in sorted(results.items(), key=lambda item: [int(p) for p in item[0].split(".")]):
        section = case.split(".")[0]
        verdicts = {result["behavior"], result["behaviorClose"]}
        if verdicts <= OK:
            passed[section] += 1
        else:
            failed[section].append(f"{case} ({result['behavior']}/{result['behaviorClose']})")
    for section in sorted(set(passed) | set(failed), key=int):
        print(f"section {section}: {passed[section]} passed, {len(failed[section])} failed"
              + (f": {', '.join(failed[section][:10])}" if failed[section] else ""))
    return 1 if any(failed.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
