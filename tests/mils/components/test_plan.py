from pathlib import Path

import pytest

from mils.components.plan import plan_run, plan_scorer
from mils.config.run_config import ScorerConfig, build_config
from mils.errors import InputError

GENERATED = {"generate": {"per_class": 3, "classes": 2}}


def test_a_plan_holds_its_config_s_key_folder_and_the_scorer_s_effective_options(tmp_path):
    config = build_config("offline", {"scorer": {"name": "fake_bow", "options": {}}, "plugins": ["tests.fakes"],
                                      "output_dir": str(tmp_path), "loop": {"steps": 3}})
    plan = plan_run(config)
    assert plan.key == config.result_key() and plan.results_dir == tmp_path / f"benchmark-{plan.key}"
    assert plan.scorer.options == {"delay_per_sample": 0.0}  # the factory's default, filled in: what every result file records
    assert plan.scorer.record == {"name": "fake_bow", "options": {"delay_per_sample": 0.0}}
    assert plan.loop.steps == 3 and plan.schedule.batch_size == config.batch_size
    assert plan.bank.generated is None


def test_plans_keep_the_names_that_banks_and_results_had_before_the_plan():
    """Generated banks are cached, and results folders named, by these hashes: what the code before
    the plan (commit 5866c84) computed for the same two configs."""
    plain = plan_run(build_config("offline", {"bank": GENERATED, "cache_dir": "/c"}))
    audio = plan_run(build_config("offline", {
        "bank": {"generate": {**GENERATED["generate"], "modality": "audio", "labels": "x.txt"}},
        "generator": {"temperature": 0.9, "top_k": 5}, "cache_dir": "/c"}))
    assert (plain.bank.generated, plain.key) == (Path("/c/banks/generated-75ad779feffc68b8.txt"), "d3afd9747741")
    assert (audio.bank.generated, audio.key) == (Path("/c/banks/generated-ba22db3bde73bbd0.txt"), "c502c70cdead")


def test_the_models_a_plan_loads_depend_on_the_model_settings_alone(tmp_path):
    base = {"bank": {"path": str(tmp_path / "b.txt"), "builtin": None}}
    a = plan_run(build_config("offline", {**base, "loop": {"steps": 2}}))
    b = plan_run(build_config("offline", {**base, "loop": {"steps": 5}, "batch_size": 2, "name": "other"}))
    c = plan_run(build_config("offline", {**base, "generator": {"temperature": 0.9}}))
    assert a.runner_key == b.runner_key and a.key != b.key  # another loop: the same models and bank embeddings
    assert a.generator.key != c.generator.key and a.scorer.key == c.scorer.key
    assert a.workload.in_flight == 8 and b.workload.in_flight == 2  # the engine's sizing follows the run


def test_a_remote_generator_is_planned_behind_the_response_cache_unless_the_config_says_otherwise():
    remote = {"backend": "openai", "model": "m", "options": {"base_url": "http://127.0.0.1:9/v1"}}
    assert plan_run(build_config("offline", {"generator": remote})).generator.cached
    assert not plan_run(build_config("offline", {"generator": {**remote, "cache": False}})).generator.cached
    assert not plan_run(build_config("offline")).generator.cached


def test_a_scorer_planned_alone_checks_its_options_under_the_name_the_user_gave_them():
    with pytest.raises(InputError, match=r"--scorer options\.colour: .* takes no option 'colour'"):
        plan_scorer(ScorerConfig(name="open_clip", options={"colour": 1}), where="--scorer options")
