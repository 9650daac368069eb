import pytest

from mils.config.profiles import task_defaults
from mils.config.run_config import build_config
from mils.config.task_specs import TASKS, get_task, task_names


@pytest.mark.parametrize("spec", TASKS, ids=lambda s: s.name)
def test_every_task_has_a_prompt_valid_profiles_and_a_cli_verb(spec):
    from cli.main import build_parser

    assert "a cat" in spec.template.render([("a cat", 0.5)], 3, init_description="a prompt")  # it fills in
    for profile in ("paper", "offline"):
        config = build_config(profile, {"bank": {"builtin": "none"}}, task=spec.name)
        assert config.task == spec.name
        if "scorer" in task_defaults(profile, spec.name):
            assert config.scorer.name == task_defaults(profile, spec.name)["scorer"]["name"]
    verbs = build_parser()._subparsers._group_actions[0].choices
    assert spec.verb in verbs
    for flag in spec.scorer_flags:  # the CLI flags the task reads exist on its command
        assert any(flag == a.dest for a in verbs[spec.verb]._actions)


def test_unknown_task_names_the_closest():
    with pytest.raises(KeyError, match="Did you mean 'video_captioning'"):
        get_task("video_captionin")
    with pytest.raises(KeyError, match="Did you mean 'text_to_image'"):
        build_config("offline", {"task": "text_to_imag"})
    assert {s.name for s in TASKS} <= set(task_names())  # and those a plugin imported here registered


def test_a_plugin_profile_gets_its_own_task_settings_never_another_profiles(monkeypatch):
    """A profile that lists no settings for a task runs it on its own base (it used to get the
    offline profile's per-task settings: another scorer than the one it named)."""
    from mils import registry
    from mils.config.profiles import get_profile

    base = get_profile("offline")
    lab = {**base, "loop": {**base["loop"], "steps": 2}, "tasks": {"audio_captioning": {"loop": {"steps": 1}}}}
    monkeypatch.setitem(registry._FACTORIES, ("profile", "lab"), lambda: lab)
    video = build_config("lab", task="video_captioning")
    assert (video.scorer.name, video.loop.steps) == ("concept", 2)  # the lab's base, not offline's video_frames
    assert build_config("lab", {"scorer": {"name": "clap"}}, task="audio_captioning").loop.steps == 1
    assert task_defaults("lab", "video_captioning") == {}
    with pytest.raises(KeyError, match="Did you mean 'video_captioning'"):
        task_defaults("lab", "video_captionin")
