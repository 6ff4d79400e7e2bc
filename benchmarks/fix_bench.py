"""Apply ``--fix --unsafe-fixes`` to every buggy case of a labeled benchmark and count what it fixed.

    python benchmarks/fix_bench.py ../shared/bench

For each buggy case (``manifest.jsonl``: ``kind`` = buggy, ``bugs`` with ``code``): copy the file,
fix it, check that the result parses, and lint it again. A bug counts as fixed when its code is no
longer reported on the fixed file.
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path


def mllint(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mllint", "check", "--no-cache", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench", type=Path)
    bench = parser.parse_args().bench
    cases = [json.loads(line) for line in (bench / "manifest.jsonl").read_text().splitlines() if line.strip()]
    rules = subprocess.run(
        [sys.executable, "-m", "mllint", "rules", "--output-format", "json"], capture_output=True, text=True, check=True
    )
    known = {rule["code"] for rule in json.loads(rules.stdout)}
    buggy, fixed, unparseable = Counter(), Counter(), []
    with tempfile.TemporaryDirectory() as folder:
        for case in cases:
            if case["kind"] != "buggy":
                continue
            target = Path(folder) / Path(case["file"]).name
            shutil.copy(bench / case["file"], target)
            codes = sorted({bug["code"] for bug in case["bugs"]} & known)
            if not codes:
                continue
            mllint(str(target), "--select", ",".join(codes), "--fix", "--unsafe-fixes", "-q")
            try:
                ast.parse(target.read_text())
            except SyntaxError:
                unparseable.append(case["id"])
            reports = json.loads(mllint(str(target), "--select", ",".join(codes), "--output-format", "json").stdout)
            left = {report["code"] for report in reports}
            for code in codes:
                buggy[code] += 1
                fixed[code] += code not in left
    print(f"{'code':<8}{'buggy cases':>12}{'fixed':>8}")
    for code in sorted(buggy):
        print(f"{code:<8}{buggy[code]:>12}{fixed[code]:>8}")
    print(f"{'TOTAL':<8}{sum(buggy.values()):>12}{sum(fixed.values()):>8}")
    print(f"files that no longer parse: {len(unparseable)} {unparseable}")


if __name__ == "__main__":
    main()
