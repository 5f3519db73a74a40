"""The command-line fuzz (tests/cli_fuzz.py) on a fixed seed: every subcommand with
generated option values ends in a valid output or a one-line error, and writes nothing
else. `make cli-fuzz` runs many more cases on a random seed."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_fuzz import COMMAND, GENERATED, Case, Runner, fuzz, report
from conftest import shared_path

SUITE_CASES = 300
SUITE_SEED = 19


BASE_SECONDS = 30  # the command lines the fuzz starts from (valid: they run to the end)


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    shared_path("models", "tiny")
    started = Runner(tmp_path_factory.mktemp("cli-fuzz"), seconds=8)
    yield started
    started.close()


def test_every_command_ends_in_a_valid_output_or_a_one_line_error(runner):
    outcomes = fuzz(runner, SUITE_CASES, SUITE_SEED)
    assert len(outcomes) > SUITE_CASES // 2  # different cases
    found = [o for o in outcomes if o.findings]
    assert not found, "findings:\n" + report(found)
    for name in GENERATED:  # every command is reached, and its checks refuse
        assert 2 in {o.status for o in outcomes if o.case.command == name}, name
    assert sum(o.status == 0 for o in outcomes) > SUITE_CASES // 20  # and some dream


@pytest.mark.parametrize("name", GENERATED)
def test_each_command_line_the_fuzz_starts_from_is_valid(runner, name):
    argv = [a.replace("{fx}", str(runner.fixture)) for a in COMMAND[name].base(runner.fixture)]
    # A command's first run in the worker pays its imports (PyAV, ...): more time than a
    # case, so that a busy machine is not taken for a hang.
    outcome = runner.run(Case(name, argv), seconds=BASE_SECONDS)
    assert (outcome.status, outcome.findings) == (0, []), outcome


# --- the judge's own check: what it must catch ------------------------------------------------

@pytest.mark.parametrize("behaviour, expected", [
    ("ok", []),
    ("refuse", []),
    ("raise", ["traceback RuntimeError"]),
    ("allocate", ["traceback MemoryError"]),
    ("hang", ["hang"]),
    ("lines", ["exit 2 with 2 lines on stderr"]),
    ("invalid", ["exit 0 with an invalid output"]),
    ("litter", ["wrote what it was not asked for"]),
    ("litter-refuse", ["exit 2 and wrote work/half.png"]),
    ("touch", ["changed an input"]),
])
def test_the_judge_catches_what_a_command_must_not_do(runner, behaviour, expected):
    image = Path(runner.fixture) / "img.png"
    original = image.read_bytes()
    outcome = runner.run(Case("selftest", [behaviour, "-o", "out.png", "--copy", str(image)]),
                         seconds=3)
    assert [f.split(" (")[0] for f in outcome.findings] == expected, outcome
    assert image.read_bytes() == original  # an input changed is put back for the next case
    assert COMMAND["selftest"].entry == "selftest"
