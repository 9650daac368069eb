"""Issue 50, item 2: text-to-image and style transfer run through the benchmark flow into a normal
results folder (resume, MLflow, `mils view`, `mils export official`); `mils t2i`/`mils style` are
thin verbs over it. Tiny real-class diffusion models, the fake LLM."""

import json

import mlflow
import pytest
import yaml

from cli import main as cli_main
from human_eval.viewer import RunIndex
from mils.storage.results import ResultStore
from mils.storage.run_folder import RunFolder


def _config(tmp_path, task, scorer, **more):
    raw = {"profile": "offline", "task": task, "name": task, "plugins": ["tests.fakes"],
           "generator": {"backend": "fake", "model": "fake"}, "scorer": scorer,
           "loop": {"steps": 2, "keep": 2, "requested": 3, "seed": 1},
           "tracking": {"uri": f"sqlite:///{tmp_path / 'mlruns.db'}", "experiment": "images"},
           "output_dir": str(tmp_path / "runs"), "cache_dir": str(tmp_path / "cache"), **more}
    path = tmp_path / f"{task}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _only_folder(tmp_path):
    folders = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert len(folders) == 1
    return folders[0]


def test_text_to_image_runs_into_a_results_folder_that_resumes_logs_and_opens(tmp_path, tiny_sd_dir,
                                                                                 tiny_pickscore_dir, capsys):
    scorer = {"name": "pickscore_t2i", "options": {"pipeline": str(tiny_sd_dir), "reward": str(tiny_pickscore_dir),
                                                   "steps": 2, "guidance": None, "size": 32, "device": "cpu"}}
    config = _config(tmp_path, "text_to_image", scorer)
    prompts = ["a red cat on a sofa", "two boats on a river"]
    assert cli_main.main(["t2i", *prompts, "--config", str(config)]) == 0
    folder = _only_folder(tmp_path)
    results = {r.sample_id: r for r in ResultStore(folder).results()}
    assert sorted(results) == ["prompt000", "prompt001"]
    for n, prompt in enumerate(prompts):
        result = results[f"prompt{n:03d}"]
        assert result.history[0].best == prompt  # step 0: the prompt itself, no bank
        images = sorted(p.name for p in RunFolder(folder).step_images(result.sample_id).iterdir())
        assert images == ["step00.png", "step01.png", "step02.png"]
    record = json.loads(RunFolder(folder).record.read_text())
    child = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}").get_run(record["mlflow"]["child"])
    assert child.data.params["task"] == "text_to_image" and child.data.metrics["samples/done"] == 2
    assert "no reference captions" not in capsys.readouterr().err  # the task has no reference metrics to skip

    stamps = {p: p.stat().st_mtime_ns for p in RunFolder(folder).images.rglob("*.png")}
    assert cli_main.main(["t2i", *prompts, "--config", str(config)]) == 0  # resumes: nothing is made again
    assert "0 computed, 2 resumed" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in RunFolder(folder).images.rglob("*.png")} == stamps

    detail = RunIndex(folder).detail("prompt001")
    assert [url.rsplit("/", 1)[-1] for url in detail["media"]["steps"]] == ["step00.png", "step01.png", "step02.png"]


def test_style_transfer_runs_into_a_results_folder_and_exports_the_official_log(tmp_path, tiny_pix2pix_dir,
                                                                                 photo_dir, capsys):
    bank = tmp_path / "pix2pix.txt"
    bank.write_text("make it a watercolour painting\nturn it into a mosaic\nadd snow\nmake it look like a sketch\n")
    scorer = {"name": "style_transfer", "options": {"editor": str(tiny_pix2pix_dir), "steps": 2, "vgg_size": 64,
                                                    "size": 64, "device": "cpu"}}
    config = _config(tmp_path, "style_transfer", scorer, bank={"path": str(bank), "builtin": None})
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    assert cli_main.main(["style", str(photo_dir / "chelsea.jpg"), str(photo_dir / "coffee.jpg"),
                          "--config", str(config)]) == 0
    folder = _only_folder(tmp_path)
    (result,) = ResultStore(folder).results()
    assert result.sample_id == "chelsea+coffee" and result.history[0].best in bank.read_text().splitlines()
    assert (RunFolder(folder).step_images(result.sample_id) / "step02.png").is_file()
    out = tmp_path / "official"
    capsys.readouterr()
    assert cli_main.main(["export", "official", str(folder), str(out)]) == 0
    first = (out / "chelsea+coffee" / "log.txt").read_text().splitlines()[0].split("\t")
    assert first[0].startswith("(") and first[0].endswith(")")  # the official log's (style, content) pair

    # a content image that cannot be read is the sample's failure, named, and the run still finishes
    assert cli_main.main(["style", str(tmp_path / "broken.jpg"), str(photo_dir / "coffee.jpg"),
                          "--config", str(config)]) == 1
    assert "FAILED broken+coffee: content: unreadable image" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["t2i", "--profile", "paper"], "give prompts, or a --config whose dataset is drawbench"),
])
def test_an_image_verb_without_inputs_is_one_line(argv, message, capsys):
    assert cli_main.main(argv) == 2
    assert message in capsys.readouterr().err
