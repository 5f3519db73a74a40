"""`python -m dreamer batch INPUT LAYER ITERATIONS RATE -o OUTDIR [options]`: the still
dreamer on many images. INPUT is a folder (searched recursively), a quoted glob, or a text
file listing images (one a line). Each output is the PNG `python -m dreamer` writes for its
image, at the image's relative path in OUTDIR; a rerun skips the finished ones, and other
settings than OUTDIR's are refused unless --force (the batch: dreamer/jobs/batch.py; its
record: dreamer/jobs/batch_record.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import models
from converters.ownership import OVERWRITE_HELP, check_not_input, check_writable_folder
from dreamer.cli.options import (
    add_dream_options,
    add_engine_options,
    check_engine_options,
    plan_from_args,
    workers_of,
)
from dreamer.jobs.batch import (
    Dream,
    contained,
    find_inputs,
    image_task,
    output_paths,
    outputs_to_dream,
)
from dreamer.jobs.batch_record import SETTINGS_FILE, Record, settings_of
from dreamer.jobs.engine import Report, open_pool, run_job, work_plan

PARSER = {"prog": "python -m dreamer batch",
          "description": "The still dreamer on every image of a folder, a glob or a list; "
          "outputs mirror the inputs' relative paths in OUTDIR (PNG). Every option of the "
          "dreamer applies."}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT",
                        help="a folder, a quoted glob ('photos/**/*.jpg'), or a text file "
                        "listing images")
    parser.add_argument("positional", nargs="*", metavar="LAYER ITERATIONS RATE",
                        help="as for the dreamer")
    add_dream_options(parser)
    add_engine_options(parser)
    parser.add_argument("-o", "--output", metavar="OUTDIR", required=True,
                        help="the folder of the outputs")
    parser.add_argument("--force", action="store_true",
                        help="dream again outputs made with other settings (only outputs of "
                        "ours are ever replaced)")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def run(args: argparse.Namespace) -> int:
    check_engine_options(args)
    network = models.open(args.model, args.weights)
    plan = plan_from_args(network, args)
    outdir = Path(args.output)
    check_not_input(outdir, [args.model, args.weights, args.guide, args.labels])
    check_writable_folder(outdir / SETTINGS_FILE)
    outputs, refused = contained(output_paths(find_inputs(args.input, outdir), outdir), outdir)
    record = Record(outdir, settings_of(network, plan), args.force)
    todo = outputs_to_dream(outputs, record, args.overwrite)
    # Ray refuses before OUTDIR is made
    with open_pool(workers_of(args), network, args.device) as pool:
        dream = Dream(network, work_plan(pool, plan))
        outdir.mkdir(parents=True, exist_ok=True)  # once every check passed (the guide read)
        record.save_settings()
        print(f"batch: {len(outputs)} images, {len(outputs) - len(todo)} finished before, "
              f"{len(todo)} to dream {pool.describe()}", flush=True)
        report = run_job([image_task(*entry, dream, record) for entry in todo], pool,
                         quiet=args.quiet, unit="image")
    report.failed[:0] = refused
    print_summary(report, len(outputs) - len(todo))
    return 1 if report.failed else 0


def print_summary(report: Report, skipped: int) -> None:
    for label, reason in report.failed:
        print(f"failed: {reason if reason.startswith(label) else f'{label}: {reason}'}",
              file=sys.stderr)
    retried = f"; {report.retried} run again after their worker died" if report.retried else ""
    print(f"batch: {len(report.done)} done, {skipped} skipped (finished before), "
          f"{len(report.failed)} failed{retried}")
