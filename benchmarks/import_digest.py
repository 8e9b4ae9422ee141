"""Whether `ccd import` stores the same rows as another checkout (the code before a change), and
with any number of workers: a digest of every table after importing the same transcripts.

Each checkout's whole `ccd import PATH --workers N` runs into a fresh home, for each N; every
table's rows are sorted and hashed, all columns but `signals.computed_at` (when the signals were
computed). The search index's own tables (FTS5 segments, which depend on the order of writes)
are checked instead by FTS5's integrity check (the index matches the traces it indexes) and by
the traces each of the prompts' words finds. Prints one line per table and checkout, and whether
all are identical.

    python benchmarks/import_digest.py --before DIR [--workers 0,1,2] [--mb 152 | PATH ...]

Without PATH, a corpus of --mb MB made from the real fixtures (as benchmarks/footprint.py makes
it: large enough for worker processes) is imported.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from import_throughput import make_corpus  # noqa: E402

VARIES = {("signals", "computed_at")}  # when the signals were computed


def digest(db: Path) -> dict[str, str]:
    """Table → row count and a hash of its sorted rows; the search index by what it finds."""
    conn = sqlite3.connect(db)
    out = {}
    tables = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    for table in tables:
        if table.startswith("traces_fts"):
            continue
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info('{table}')") if (table, r[1]) not in VARIES]
        rows = sorted(repr(r) for r in conn.execute(f"SELECT {', '.join(cols)} FROM '{table}'"))
        out[table] = f"{len(rows)} rows {hashlib.sha256(chr(10).join(rows).encode()).hexdigest()[:16]}"
    conn.execute("INSERT INTO traces_fts (traces_fts) VALUES ('integrity-check')")  # raises if the index is wrong
    words = sorted({w for (p,) in conn.execute("SELECT prompt FROM traces WHERE prompt IS NOT NULL")
                    for w in p.split()[:12] if w.isalpha()})
    found = [sorted(r[0] for r in conn.execute("SELECT t.trace_id FROM traces_fts f JOIN traces t ON t.rowid = f.rowid "
                                               "WHERE traces_fts MATCH ?", (f'"{w}"',))) for w in words]
    out["traces_fts (search)"] = f"{len(words)} words {hashlib.sha256(repr(found).encode()).hexdigest()[:16]}"
    conn.close()
    return out


def imported(checkout: Path, paths: list[Path], workers: int, home: Path) -> dict[str, str]:
    home.mkdir(mode=0o700)
    roots = home / "no-transcripts"
    roots.mkdir()
    (home / "config.toml").write_text(f"[capture]\ntranscript_roots = [{json.dumps(str(roots))}]\n")
    env = dict(os.environ, CC_CAPTURE_HOME=str(home), PYTHONPATH=str(checkout))
    args = [sys.executable, "-m", "cc_capture", "import", *map(str, paths), "--workers", str(workers), "--json"]
    subprocess.run(args, env=env, cwd=checkout, check=True, stdout=subprocess.DEVNULL)
    return digest(home / "cc-capture.db")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path, help="transcripts to import (default: a corpus of --mb MB)")
    ap.add_argument("--before", type=Path, required=True, help="the other checkout")
    ap.add_argument("--workers", default="0,1,2", help="worker counts to import with, comma-separated")
    ap.add_argument("--mb", type=int, default=152)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = a.paths or [Path(tmp) / "corpus"]
        if not a.paths:
            make_corpus(paths[0], a.mb)
        runs = {(label, w): imported(checkout, paths, w, Path(tmp) / f"home-{label}-{w}")
                for w in map(int, a.workers.split(",")) for label, checkout in (("this", REPO), ("before", a.before))}
    first = next(iter(runs.values()))
    for table in first:
        values = {run: digest_of[table] for run, digest_of in runs.items()}
        same = len(set(values.values())) == 1
        print(f"{'same' if same else 'DIFFERENT':9s} {table:22s} {first[table]}"
              + ("" if same else "  " + "; ".join(f"{label} {w} workers: {v}" for (label, w), v in values.items())))
    identical = all(d == first for d in runs.values())
    print(f"{'identical' if identical else 'NOT identical'}: {len(first)} tables, {len(runs)} imports "
          f"({', '.join(f'{label} with {w} workers' for label, w in runs)})")
    sys.exit(0 if identical else 1)


if __name__ == "__main__":
    main()
