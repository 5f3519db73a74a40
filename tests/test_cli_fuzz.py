"""The command-line fuzz (tests/cli_fuzz.py) on a fixed seed: every subcommand with
generated option values ends in a valid output or a one-line error, and writes nothing
else. `make cli-fuzz` runs many more cases on a random seed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_fuzz import COMMAND, GENERATED, Case, Outcome, Runner, fuzz, report
from conftest import shared_path

SUITE_CASES = 300
SUITE_SEED = 19


def argv_has(outcome: Outcome, *texts: str) -> bool:
    return all(any(text in arg for arg in outcome.case.argv) for text in texts)


def symptom(outcome: Outcome, text: str) -> bool:
    return any(text in finding for finding in outcome.findings)


# Findings of bugs that other fixes of issue 19 remove, by name: a finding listed here is
# expected (the test is then marked xfail), any other fails the test, and an entry that no
# case hits any more fails it too, so that the entry is removed once its fix is merged.
KNOWN_BUGS: dict[str, Callable[[Outcome], bool]] = {
    # item 6 (every number checked): RATE inf or a layer weight of 1e999 is accepted: a
    # uniform (garbage) image with exit 0, or a warning line before another error
    "RATE inf, weight 1e999 accepted": lambda o: symptom(o, "a uniform image")
    or "about inf standard deviations" in o.stderr,
}


def known_bug(outcome: Outcome) -> str | None:
    return next((name for name, hit in KNOWN_BUGS.items() if hit(outcome)), None)


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
    unknown = [o for o in found if known_bug(o) is None]
    assert not unknown, "findings:\n" + report(unknown)
    hit = {known_bug(o) for o in found}
    stale = sorted(set(KNOWN_BUGS) - hit)
    assert not stale, f"KNOWN_BUGS entries no case hits any more (fixed? remove them): {stale}"
    for name in GENERATED:  # every command is reached, and its checks refuse
        assert 2 in {o.status for o in outcomes if o.case.command == name}, name
    assert sum(o.status == 0 for o in outcomes) > SUITE_CASES // 20  # and some dream
    if found:
        pytest.xfail("known bugs of issue 19 (KNOWN_BUGS):\n" + report(found))


@pytest.mark.parametrize("name", GENERATED)
def test_each_command_line_the_fuzz_starts_from_is_valid(runner, name):
    argv = [a.replace("{fx}", str(runner.fixture)) for a in COMMAND[name].base(runner.fixture)]
    outcome = runner.run(Case(name, argv))
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
