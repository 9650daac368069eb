"""The judging page under concurrent raters, with its server SIGKILLed and restarted half-way
(`benchmarks/judge_load.py`; `make bench` runs it at 50 raters x 200 answers)."""

import pytest

pytestmark = pytest.mark.slow


def test_no_answer_is_lost_or_stored_twice_across_a_crash(tmp_path):
    from benchmarks import judge_load as module

    result = module.run_load(raters=8, answers=25, restart=True, folder=tmp_path)
    assert result["restarted"]
    assert (result["stored"], result["lost"], result["duplicates"]) == (200, 0, 0)
