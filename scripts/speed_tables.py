"""Rewrite the README's speed tables from the saved benchmark reports (runs no benchmark itself).

    python scripts/speed_tables.py [--results benchmarks/results] [--readme README.md] [--check]

Reads every ``benchmarks/results/<name>.json`` (written by a benchmark's ``--save``, or ``--json > file``) and
replaces what lies between ``<!-- speed:begin -->`` and ``<!-- speed:end -->`` in the README by the goals table
(each goal, the measured figure and whether it is met) and one line per report (when, under what load, the
figures behind it). ``--check`` changes nothing and exits 1 when the README is out of date.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jetcloud.benchreport import load_reports, render_tables, replace_between_markers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default="benchmarks/results", help="folder of the saved JSON reports")
    parser.add_argument("--readme", default="README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if the README's tables are out of date")
    args = parser.parse_args(argv)
    reports = load_reports(args.results)
    if not reports:
        print(f"no reports in {args.results}: run the benchmarks with --save first", file=sys.stderr)
        return 2
    readme = Path(args.readme)
    old = readme.read_text()
    new = replace_between_markers(old, render_tables(reports), where=str(readme))
    if args.check:
        if new != old:
            print(f"{readme}: speed tables out of date; run python scripts/speed_tables.py", file=sys.stderr)
            return 1
        return 0
    tmp = readme.with_name(f".{readme.name}.tmp")
    tmp.write_text(new)
    tmp.replace(readme)
    print(f"{readme}: speed tables from {len(reports)} report(s): {', '.join(sorted(reports))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
