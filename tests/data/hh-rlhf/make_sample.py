"""Re-cut harmless-base-sample.jsonl.gz from the full HH-RLHF harmless-base test file (see README.md).

Usage: python tests/data/hh-rlhf/make_sample.py PATH/TO/harmless-base/test.jsonl.gz

Deterministic: the file is read in order and a line is kept, unchanged, while fewer than
SINGLE single-turn or MULTI multi-turn lines have been kept. The gzip header carries no
name and no time, so the same input gives the same bytes.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

SINGLE, MULTI = 300, 100
OUT = Path(__file__).resolve().parent / "harmless-base-sample.jsonl.gz"


def is_single_turn(line: str) -> bool:
    chosen = json.loads(line)["chosen"]
    return chosen.count("\n\nHuman:") == 1 and chosen.count("\n\nAssistant:") == 1


def main(source: str) -> None:
    kept: list[str] = []
    counts = {True: 0, False: 0}
    limits = {True: SINGLE, False: MULTI}
    with gzip.open(source, "rt", encoding="utf-8") as handle:
        for line in handle:
            single = is_single_turn(line)
            if counts[single] < limits[single]:
                kept.append(line if line.endswith("\n") else line + "\n")
                counts[single] += 1
    with open(OUT, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        out.write("".join(kept).encode("utf-8"))
    print(f"{OUT.name}: {len(kept)} lines ({counts[True]} single-turn, {counts[False]} multi-turn)")


if __name__ == "__main__":
    main(sys.argv[1])
