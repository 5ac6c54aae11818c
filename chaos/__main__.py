"""``python -m chaos [--long] [--seed N] [--broker kafka|tansu] [--rounds N] [--scenarios a,b]``: the fault campaign.

Runs on a stack of its own and prints a table.  Exit status 0 when every expected file was
delivered byte-identical (S3, and the output dir where it can be written), nothing was written
outside the output dir, no worker died on its own and every other check held; 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from bench.common import fresh_dir, prune
from chaos.campaign import run_campaign
from chaos.scenario import LONG, QUICK
from chaos.scenarios import SCENARIOS
from chaos.verdict import report
from devstack.stack import BROKERS, DEFAULT_BROKER
from devstack.worker import PROJECT_ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--long", action="store_true", help="more faults, more files, longer outages")
    parser.add_argument("--seed", type=int, default=1, help="the campaign's random choices (default 1)")
    parser.add_argument("--broker", choices=BROKERS, default=DEFAULT_BROKER, help=f"default {DEFAULT_BROKER}")
    parser.add_argument(
        "--rounds",
        type=int,
        help=f"rounds of two-workers-kill (default {QUICK.two_worker_rounds}, --long {LONG.two_worker_rounds})",
    )
    parser.add_argument(
        "--scenarios", help=f"comma-separated subset, in the campaign's order (default all: {', '.join(SCENARIOS)})"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=PROJECT_ROOT / "var" / "chaos",
        help="working directory, emptied first (default var/chaos)",
    )
    args = parser.parse_args(argv)
    scenarios = [name.strip() for name in (args.scenarios or "").split(",") if name.strip()] or list(SCENARIOS)
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    intensity = LONG if args.long else QUICK
    if args.rounds is not None:
        intensity = dataclasses.replace(intensity, two_worker_rounds=args.rounds)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    ordered = [name for name in SCENARIOS if name in scenarios]
    outcomes = run_campaign(fresh_dir(args.work.resolve()), args.seed, intensity, broker=args.broker, scenarios=ordered)
    kind = "long" if args.long else "quick"
    print(f"\nchaos campaign, {kind}, seed {args.seed}, broker {args.broker}:\n{report(outcomes)}", flush=True)
    if not all(outcome.ok for outcome in outcomes):
        return 1  # everything stays in the work dir for the diagnosis
    prune(args.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
