import pytest

from mils.config.profiles import task_defaults
from mils.config.run_config import build_config
from mils.config.task_specs import get_task, task_names
from mils.config.tasks import BUILTIN

TASKS = [get_task(name) for name in BUILTIN]


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
    if spec.command:  # its own verb is built from its spec: its inputs and its models' flags
        dests = {a.dest for a in verbs[spec.verb]._actions}
        assert {i.dest for i in spec.command.inputs} | set(spec.command.flags) <= dests


def test_each_built_in_task_is_one_module_with_its_prompts_and_profile_settings():
    """Issue 50: a built-in task is its module (mils/config/tasks/NAME.py): spec, prompts, profile sections."""
    import importlib

    for name in BUILTIN:
        module = importlib.import_module(f"mils.config.tasks.{name}")
        assert module.SPEC is get_task(name) and module.SPEC.official == module.OFFICIAL
    assert task_defaults("paper", "audio_captioning")["loop"]["steps"] == 19  # from the task's module
    assert task_defaults("offline", "image_captioning") == {}  # the profile's base as it is
    first = task_defaults("offline", "style_transfer")
    first["loop"]["steps"] = 99  # a caller's change stays its own
    assert task_defaults("offline", "style_transfer")["loop"]["steps"] == 3


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
