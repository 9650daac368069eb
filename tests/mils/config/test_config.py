from pathlib import Path

import pytest

from mils.config.run_config import build_config, load_config
from mils.registry import UnknownComponentError


def test_offline_profile_is_complete_and_frozen():
    config = build_config("offline")
    assert config.scorer.name == "concept" and config.bank.builtin == "imagenet-templates"
    assert config.generator.temperature == 0.5 and config.generator.top_p == 0.9
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="frozen"):
        config.batch_size = 3


def test_paper_profile_defaults_are_the_papers():
    config = build_config("paper", {"bank": {"path": "bank.txt"}})
    assert config.generator.model == "meta-llama/Llama-3.1-8B-Instruct"
    assert config.scorer.options == {"model": "ViT-SO400M-14-SigLIP", "pretrained": "webli"}
    assert (config.loop.steps, config.loop.keep, config.loop.requested) == (10, 50, 50)


def test_paper_profile_without_bank_says_which_file_to_give():
    with pytest.raises(ValueError, match="image_descriptions_per_class.txt"):
        build_config("paper")


def test_overrides_are_validated_and_named():
    assert build_config("offline", {"loop": {"steps": 7}}).loop.steps == 7
    with pytest.raises(ValueError, match="top_p"):
        build_config("offline", {"generator": {"top_p": 1.5}})
    with pytest.raises(ValueError, match="stepz"):
        build_config("offline", {"loop": {"stepz": 7}})


def test_unknown_profile_lists_known_ones():
    with pytest.raises(UnknownComponentError, match="offline, paper"):
        build_config("papper")


def test_yaml_config(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("profile: offline\nloop:\n  steps: 2\nbatch_size: 4\n")
    config = load_config(path, {"loop": {"keep": 3}})
    assert (config.loop.steps, config.loop.keep, config.batch_size) == (2, 3, 4)
    (tmp_path / "bad.yaml").write_text("loop: {}\n")
    with pytest.raises(ValueError, match="profile"):
        load_config(tmp_path / "bad.yaml")


def test_shipped_configs_are_valid():
    from pathlib import Path

    from flows.sweep import expand_sweep

    folder = Path(__file__).resolve().parents[3] / "configs"
    files = sorted(folder.glob("*.yaml"))
    assert files
    for path in files:
        if "sweep:" in path.read_text():
            grid, variants = expand_sweep(path)
            for point, config in variants:  # each variant's config holds its point's values
                for dotted, value in point.items():
                    got = config.model_dump(mode="json")
                    for key in dotted.split("."):
                        got = got[key]
                    assert got == value, (path.name, dotted)
        else:
            load_config(path)


def test_a_misspelt_metric_is_refused_when_the_config_is_built():
    from mils.errors import InputError

    with pytest.raises(InputError, match=r"unknown metric 'CIDER' in metrics; known: .*did you mean 'CIDEr'\?"):
        build_config("offline", {"metrics": ["BLEU", "CIDER"]})
    assert build_config("offline", {"metrics": ["CIDEr", "SPIDEr"]}).metrics == ("CIDEr", "SPIDEr")


@pytest.mark.parametrize(("override", "message"), [
    ({"scorer": {"name": "open_clp"}}, r"unknown scorer 'open_clp'.*Did you mean 'open_clip'"),
    ({"scorer": {"name": "concept", "options": {"batchsize": 4}}},
     r"scorer.options.batchsize: scorer 'concept' takes no option 'batchsize'.*did you mean 'batch_size'"),
    ({"scorer": {"name": "concept", "options": {"batch_size": 0}}}, r"scorer.options.batch_size: 0 is not a size"),
    ({"generator": {"backend": "vlm"}}, r"unknown generator 'vlm'.*Did you mean 'vllm'"),
    ({"generator": {"options": {"temprature": 0.3}}}, r"generator.options.temprature: generator 'transformers'"),
    ({"scorer": {"name": "video_frames", "options": {"image_scorer": {"name": "concept", "options": {"size": 3}}}}},
     r"scorer.options.image_scorer.options.size: scorer 'concept' takes no option 'size'"),
])
def test_a_config_mistake_is_refused_when_the_config_is_built(override, message):
    """Before any model loads: a misspelt component or option is one line naming the key."""
    from mils.errors import MilsError

    with pytest.raises(MilsError, match=message):
        build_config("offline", override)


def test_a_dataset_kind_and_its_arguments_are_checked_before_anything_is_read():
    from evaluation.datasets import check_dataset
    from mils.config.run_config import DatasetConfig

    with pytest.raises(UnknownComponentError, match="Did you mean 'coco_karpathy'"):
        check_dataset(DatasetConfig(kind="coco_karpathi"))
    with pytest.raises(ValueError, match="dataset.args.json: .* did you mean 'json_path'"):
        check_dataset(DatasetConfig(kind="coco_karpathy", args={"json": "x", "images_root": "y"}))
    with pytest.raises(ValueError, match="dataset.args: dataset 'coco_karpathy' needs images_root"):
        check_dataset(DatasetConfig(kind="coco_karpathy", args={"json_path": "x"}))
    check_dataset(DatasetConfig(kind="folder", args={"directory": "/nonexistent"}))  # files are the loader's to read


@pytest.mark.parametrize("change, message", [
    ({"name": "../../x"}, "not a plain name"),
    ({"name": "/tmp/elsewhere"}, "not a plain name"),
    ({"name": ".hidden"}, "not a plain name"),
    ({"scorer": {"name": "concept", "options": {"batch_size": "x"}}}, r"scorer.options.batch_size: 'x' is not a whole number"),
    ({"scorer": {"name": "concept", "options": {"device": 3}}}, r"scorer.options.device: 3 is not a string"),
])
def test_a_config_that_would_fail_late_or_write_elsewhere_is_refused_when_built(change, message):
    """Before: a name with ../ put the results outside output_dir; a wrong option type was a
    TypeError after the models had loaded."""
    from mils.config.run_config import build_config
    from mils.errors import InputError

    with pytest.raises(InputError, match=message):
        build_config("offline", change)


def test_a_config_brings_its_plugins_to_the_process_that_unpickles_it(tmp_path):
    """A Dask worker gets its shard's config pickled: unpickling imports the config's plugins there
    (build_config and unpickling are the two places plugins are imported)."""
    import pickle
    import subprocess
    import sys

    config = build_config("offline", {"plugins": ["tests.fakes"], "generator": {"backend": "fake", "model": "fake"}})
    (tmp_path / "config.pkl").write_bytes(pickle.dumps(config))
    check = ("import pickle, sys; from mils import registry; before = 'fake' in registry.known('generator'); "
             f"config = pickle.loads(open({str(tmp_path / 'config.pkl')!r}, 'rb').read()); "
             "print(before, 'fake' in registry.known('generator'), 'tests.fakes' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=Path(__file__).parents[3])
    assert out.stdout.split() == ["False", "True", "True"], out.stderr


def test_a_folders_config_at_the_default_settings_chooses_nothing_of_the_users():
    """Issue 47, item 2: only settings a folder actually chose are refused (a demo folder's own config
    names the default store, folders and no plugins, and reruns as it is)."""
    from mils.config.foreign import user_settings
    from mils.config.run_config import build_config

    raw = build_config("offline").model_dump(mode="json")
    assert user_settings(raw) == {}
    raw["tracking"]["uri"] = "sqlite:////elsewhere/mlruns.db"
    raw["plugins"] = ["their_module"]
    assert user_settings(raw) == {"plugins": ["their_module"], "tracking.uri": "sqlite:////elsewhere/mlruns.db"}


def test_a_config_written_before_the_executor_was_named_so_still_reads():
    """Issue 50, item 5: "runner" is the TaskRunner's word; where shards run is ``executor:``, and a
    config (or a results folder's config.json) that says ``runner:`` reads as before, its address
    still the user's to choose, never a folder's."""
    from mils.config.foreign import user_settings

    config = build_config("offline", {"runner": {"kind": "dask", "workers": 2, "shard_size": 3}})
    assert (config.executor.kind, config.executor.workers, config.executor.shard_size) == ("dask", 2, 3)
    assert "runner" not in config.model_dump() and config.model_dump()["executor"]["workers"] == 2
    assert user_settings({"runner": {"address": "tcp://10.0.0.5:8786"}}) == {"runner.address": "tcp://10.0.0.5:8786"}
    assert user_settings({"executor": {"address": "tcp://10.0.0.5:8786"}}) == {"executor.address": "tcp://10.0.0.5:8786"}
