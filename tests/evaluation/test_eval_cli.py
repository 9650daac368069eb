import json

import pandas as pd

from cli.main import main


def test_mils_eval_json_and_table(tmp_path, capsys):
    preds = {"1": "a cat sitting on a sofa", "2": "two dogs playing in a park"}
    refs = {"1": ["A black cat sits on a red sofa.", "a cat resting on a couch"],
            "2": ["Two dogs play with a ball on the grass.", "dogs running in a park"]}
    (tmp_path / "p.json").write_text(json.dumps(preds))
    (tmp_path / "r.json").write_text(json.dumps(refs))
    code = main(["eval", "--predictions", str(tmp_path / "p.json"), "--references", str(tmp_path / "r.json"),
                 "--metrics", "BLEU", "CIDEr", "--json", "--resamples", "50", "--out", str(tmp_path / "out")])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["corpus"]) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr"}
    assert 0 < report["corpus"]["BLEU-1"]["value"] <= 1  # native 0-1 scale in JSON
    table = pd.read_parquet(tmp_path / "out" / "per_sample.parquet")
    assert list(table.index) == ["1", "2"] and "CIDEr" in table

    main(["eval", "--predictions", str(tmp_path / "p.json"), "--references", str(tmp_path / "r.json"),
          "--metrics", "BLEU", "--resamples", "50"])
    text = capsys.readouterr().out
    bleu1 = report["corpus"]["BLEU-1"]["value"] * 100
    assert f"{bleu1:.1f}" in text  # x100 in the human-readable table


def test_mils_eval_bad_files_are_named(tmp_path, capsys):
    (tmp_path / "p.json").write_text("{broken")
    assert main(["eval", "--predictions", str(tmp_path / "p.json"), "--references", str(tmp_path / "r.json")]) == 2
    assert "p.json is not valid JSON" in capsys.readouterr().err
    (tmp_path / "p.json").write_text(json.dumps({"1": "x"}))
    assert main(["eval", "--predictions", str(tmp_path / "p.json"), "--references", str(tmp_path / "r.json")]) == 2
    assert "references file not found" in capsys.readouterr().err
