import pytest

from mils.config import build_config
from mils.task_specs import TASKS, get_task, task_names


@pytest.mark.parametrize("spec", TASKS, ids=lambda s: s.name)
def test_every_task_has_a_prompt_valid_profiles_and_a_cli_verb(spec):
    from cli.main import build_parser

    assert "a cat" in spec.template.render([("a cat", 0.5)], 3, init_description="a prompt")  # it fills in
    for profile in ("paper", "offline"):
        config = build_config(profile, {"bank": {"builtin": "none"}}, task=spec.name)
        assert config.task == spec.name
        if "scorer" in spec.defaults(profile):
            assert config.scorer.name == spec.defaults(profile)["scorer"]["name"]
    verbs = build_parser()._subparsers._group_actions[0].choices
    assert spec.verb in verbs
    for flag in spec.scorer_flags:  # the CLI flags the task reads exist on its command
        assert any(flag == a.dest for a in verbs[spec.verb]._actions)


def test_unknown_task_names_the_closest():
    with pytest.raises(KeyError, match="Did you mean 'video_captioning'"):
        get_task("video_captionin")
    with pytest.raises(KeyError, match="Did you mean 'text_to_image'"):
        build_config("offline", {"task": "text_to_imag"})
    assert set(task_names()) == {s.name for s in TASKS}
