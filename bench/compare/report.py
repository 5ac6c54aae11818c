"""The comparison as a table of stages and figures, and a chart of MB/s per stage and system."""

from __future__ import annotations

from pathlib import Path

from bench.common import CHUNK_SIZE, GB, MB, STAGES, KiB, ProcessStats, Workload, format_table
from bench.compare.run import Run

# The ceiling's consumer writes nothing: its "received" is "consumed".
STAGE_TITLES = {**STAGES, "received": "on disk (ceiling: consumed)"}


def stage_cell(workload: Workload, run: Run, stage: str) -> str:
    if stage not in run.stages_measured:
        return "—"
    if stage not in run.stages:
        return "not reached"
    seconds = run.stages[stage]
    return (
        f"{seconds:6.1f} s {workload.total_bytes / seconds / MB:6.1f} MB/s {len(workload.sizes) / seconds:6.1f} files/s"
    )


def figures(workload: Workload, runs: list[Run]) -> list[list[str]]:
    """The comparison, one row per figure, one column per system ('—' where it does not apply or was not reached)."""
    by_system = {run.system: run for run in runs}
    openmsistream = by_system.get("OpenMSIStream 1.8.8")
    ceiling = by_system.get("aiokafka ceiling")

    def ratio(numerator: Run | None, numerator_stage: str, denominator: Run | None, denominator_stage: str) -> float:
        """Throughput of ``denominator`` at its stage ÷ that of ``numerator`` at its stage, via their times."""
        if numerator is None or denominator is None:
            return float("nan")
        if numerator_stage not in numerator.stages or denominator_stage not in denominator.stages:
            return float("nan")
        return numerator.stages[numerator_stage] / denominator.stages[denominator_stage]

    def text(value: float, form: str) -> str:
        return "—" if value != value else form.format(value)  # NaN: not applicable or not reached

    def bytes_cell(run: Run) -> str:
        if not run.broker_bytes:
            return "—"
        parts = " + ".join(
            f"{kind} {size / workload.total_bytes:.2f}" for kind, size in run.broker_bytes.items() if size
        )
        return f"{sum(run.broker_bytes.values()) / workload.total_bytes:.2f}" + (f" ({parts})" if parts else "")

    def consumer(run: Run) -> ProcessStats | None:
        return run.processes.get(run.consumer)

    return [
        [
            "on disk: throughput ÷ OpenMSIStream 1.8.8's",
            *(text(ratio(openmsistream, "received", run, "received"), "{:.2f} x") for run in runs),
        ],
        [
            "on disk: throughput ÷ the aiokafka ceiling's (consumed)",
            *(text(100 * ratio(ceiling, "received", run, "received"), "{:.0f} %") for run in runs),
        ],
        [
            "valid in S3, last file: time ÷ time of the last file on disk",
            *(text(ratio(run, "in_s3", run, "received"), "{:.2f}") for run in runs),
        ],
        [
            "receiving process: CPU-seconds per GB delivered",
            *(
                f"{stats.cpu_seconds / (workload.total_bytes / GB):.1f} s ({run.consumer})"
                if (stats := consumer(run)) and not run.problem
                else "—"
                for run in runs
            ),
        ],
        ["bytes the broker received per payload byte", *(bytes_cell(run) for run in runs)],
        [
            "receiving process: peak RSS",
            *(f"{stats.peak_rss / MB:.0f} MB ({run.consumer})" if (stats := consumer(run)) else "—" for run in runs),
        ],
    ]


def report(workload: Workload, runs: list[Run], partitions: int, broker: str, load: float) -> str:
    lines = [
        f"workload: {workload.describe()}; broker: {broker}; {partitions} partitions; "
        f"{CHUNK_SIZE // KiB} KiB chunks; load average before: {load:.2f}",
        "",
        format_table(
            ["stage (from the upload's start)", *(run.system for run in runs)],
            [[title, *(stage_cell(workload, run, stage) for run in runs)] for stage, title in STAGE_TITLES.items()],
        ),
        "",
        format_table(["figure", *(run.system for run in runs)], figures(workload, runs)),
        "",
        format_table(
            ["process", "system", "peak RSS", "CPU"],
            [
                [name, run.system, f"{stats.peak_rss / MB:.0f} MB", f"{stats.cpu_seconds:.1f} s"]
                for run in runs
                for name, stats in run.processes.items()
            ],
            text_columns=2,
        ),
        "",
        *(f"{run.system}: " + "; ".join(part for part in (run.verdict, run.problem) if part) for run in runs),
    ]
    return "\n".join(lines)


def write_chart(workload: Workload, runs: list[Run], broker: str, path: Path) -> None:
    """Bars of MB/s per stage (groups) and system (bars); a stage a system did not reach is marked, not drawn."""
    import matplotlib  # only this report needs it; the import takes a second

    matplotlib.use("Agg")
    from matplotlib import pyplot

    stages = list(STAGES)
    figure, axes = pyplot.subplots(figsize=(7.5, 3.6), dpi=100)
    width = 0.8 / max(1, len(runs))
    for number, run in enumerate(runs):
        positions = [stage + (number - (len(runs) - 1) / 2) * width for stage in range(len(stages))]
        rates = [workload.total_bytes / run.stages[stage] / MB if stage in run.stages else 0.0 for stage in stages]
        bars = axes.bar(positions, rates, width, label=run.system)
        for bar, stage, rate in zip(bars, stages, rates, strict=True):
            if stage not in run.stages_measured:
                continue
            label = (
                f"{rate:.0f}" if stage in run.stages else "stalled" if run.problem.startswith("stalled") else "failed"
            )
            axes.annotate(label, (bar.get_x() + bar.get_width() / 2, rate), ha="center", va="bottom", fontsize=8)
    axes.set_xticks(range(len(stages)), [STAGE_TITLES[stage] for stage in stages])
    axes.set_ylabel("MB/s (10^6 bytes/s)")
    axes.set_title(f"{workload.describe()}; broker: {broker}", fontsize=9)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
