"""Side-by-side benchmark: filestream, OpenMSIStream 1.8.8 and the bare-Kafka ceiling on one workload and broker.

    .venv/bin/python -m bench.compare [--quick] [--broker kafka|tansu] [--only filestream,openmsistream,ceiling]
                                      [--partitions 8] [--seed 1] [--stall-timeout 180] [--profile]

The workload is seeded and generated once: many small files, some medium, one large
(``full``: 500 x 64 KiB + 40 x 4 MiB + 1 x 512 MiB; ``--quick``: 50 x 64 KiB + 8 x 4 MiB +
1 x 32 MiB).  Each system runs on a fresh embedded stack of the chosen broker (Apache Kafka by
default, with Kafka's default segment sizes so nothing is compacted within a run), on a topic
of ``--partitions`` partitions created with filestream's ``max.message.bytes``, with 1 MiB chunks:

* **filestream**: one worker (`faust -A app worker`, default settings: output dir, S3,
  metadata reproducer) and the real upload command.  Stages, timed from the upload's
  start: every chunk acknowledged by the broker (the command exits), every file on disk,
  every file valid in S3 (the worker's transfers view).  Afterwards every output file and
  every S3 object is read back and compared with its source.
* **OpenMSIStream 1.8.8**, installed once into ``var/bench/openmsistream-venv``: its
  ``DataFileDownloadDirectory`` (warmed up with one file, so its consumer group has
  joined) and ``DataFileUploadDirectory --upload_existing`` with its shipped producer
  settings.  Timed from the uploader's start until every file on disk is byte-identical.
* **ceiling**: aiokafka producing the same files as records of up to 1 MiB (acks=all) while
  a consumer reads them, with no other work: the most this broker moves on this machine.

A system whose progress stops for ``--stall-timeout`` seconds (OpenMSIStream's downloader
sometimes waits forever for a chunk) is reported as stalled, with what it had delivered; a
system that fails is reported with its error; the others run all the same.

Prints, per stage and system, seconds, MB/s (10^6 bytes/s) and files/s; peak RSS and CPU
seconds of every process (workers and consumers from the start of the timed run); the
figures that compare them (throughput ratios, S3 lag, CPU per GB, bytes the broker received
per payload byte, counted from the records on every topic after the run, and peak RSS);
and writes the table (``compare.txt``) and a chart of MB/s per stage and system
(``compare.png``) into ``var/bench/compare/``.  ``--profile`` adds one more filestream run
with py-spy sampling the worker (skipped if py-spy is missing) and prints where the
worker's time goes.
"""

from __future__ import annotations

import argparse
import logging
import shutil

from bench.common import (
    BENCH_VAR,
    STALL_TIMEOUT,
    WORKLOADS,
    Workload,
    add_broker_option,
    fresh_dir,
    load_average,
    prune,
)
from bench.compare.ceiling import run_ceiling
from bench.compare.filestream import run_filestream
from bench.compare.openmsistream import run_openmsistream
from bench.compare.profiling import profile_report
from bench.compare.report import report, write_chart
from bench.compare.run import Run

log = logging.getLogger("bench.compare")
SYSTEMS = ("filestream", "openmsistream", "ceiling")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a much smaller workload")
    add_broker_option(parser)
    parser.add_argument("--only", default=",".join(SYSTEMS), help=f"comma-separated subset of {', '.join(SYSTEMS)}")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=STALL_TIMEOUT,
        help=f"seconds without progress after which a system is reported as stalled (default {STALL_TIMEOUT:.0f})",
    )
    parser.add_argument("--profile", action="store_true", help="one more filestream run with py-spy on the worker")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    systems = [system.strip() for system in args.only.split(",") if system.strip()]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")

    work = fresh_dir(BENCH_VAR / "compare")
    load = load_average()
    sizes = WORKLOADS["quick" if args.quick else "full"]
    workload = Workload.generate(sizes, work / "source", args.seed)
    log.info("workload: %s; broker: %s", workload.describe(), args.broker)
    runners = {"filestream": run_filestream, "openmsistream": run_openmsistream, "ceiling": run_ceiling}
    titles = {"filestream": "filestream", "openmsistream": "OpenMSIStream 1.8.8", "ceiling": "aiokafka ceiling"}
    runs: list[Run] = []
    for system in (system for system in SYSTEMS if system in systems):
        log.info("running %s", system)
        try:
            runs.append(
                runners[system](workload, fresh_dir(work / system), args.partitions, args.broker, args.stall_timeout)
            )
        except Exception as exc:  # one system failing must not cost the others' figures
            log.exception("%s failed", system)
            runs.append(Run(titles[system], (), "", problem=f"failed: {type(exc).__name__}: {exc}"))
        prune(work / system)
    text = report(workload, runs, args.partitions, args.broker, load)
    (work / "compare.txt").write_text(text + "\n")
    write_chart(workload, runs, args.broker, work / "compare.png")
    print(f"\n{text}\n\ntable: {work / 'compare.txt'}; chart: {work / 'compare.png'}", flush=True)
    if args.profile:
        raw = work / "worker-profile.txt"
        log.info("running filestream again under py-spy")
        run_filestream(
            workload, fresh_dir(work / "filestream-profiled"), args.partitions, args.broker, args.stall_timeout, raw
        )
        prune(work / "filestream-profiled")
        if raw.exists():
            print(f"\nwhere the worker's time goes ({raw}):\n{profile_report(raw)}", flush=True)
    shutil.rmtree(workload.source_dir)


if __name__ == "__main__":
    main()
