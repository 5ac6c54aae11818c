"""``python -m chaos [--long] [--seed N]``: run the fault campaign on a stack of its own and print a table.

Exit status 0 when every expected file was delivered byte-identical (output dir and S3),
nothing was written outside the output dir and the worker never died on its own; 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bench.common import fresh_dir, prune
from chaos.campaign import LONG, QUICK, report, run_campaign
from devstack.worker import PROJECT_ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--long", action="store_true", help="more faults, more files, longer outages (about 4 minutes)")
    parser.add_argument("--seed", type=int, default=1, help="the campaign's random choices (default 1)")
    parser.add_argument(
        "--work",
        type=Path,
        default=PROJECT_ROOT / "var" / "chaos",
        help="working directory, emptied first (default var/chaos)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    outcomes = run_campaign(fresh_dir(args.work), args.seed, LONG if args.long else QUICK)
    print(f"\nchaos campaign, {'long' if args.long else 'quick'}, seed {args.seed}:\n{report(outcomes)}", flush=True)
    if not all(outcome.ok for outcome in outcomes):
        return 1  # everything stays in the work dir for the diagnosis
    prune(args.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
