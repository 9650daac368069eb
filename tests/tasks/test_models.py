from mils.config import build_config
from tasks import models


def test_models_are_loaded_once_per_process_and_reused_across_loop_settings(tmp_path, fake_bank):
    bank = tmp_path / "bank.txt"
    bank.write_text("\n".join(fake_bank))
    base = {"plugins": ["tests.fakes"], "generator": {"backend": "fake", "model": "fake"}, "scorer": {"name": "fake_bow"},
            "bank": {"path": str(bank), "builtin": None}, "cache_dir": str(tmp_path / "cache")}
    a = build_config("offline", {**base, "loop": {"steps": 2}})
    b = build_config("offline", {**base, "loop": {"steps": 5, "keep": 3}})
    first = models.captioner_for(a)
    count = models.loaded_count()
    second = models.captioner_for(b)
    assert second is first and models.loaded_count() == count  # no reload for a loop change
    assert second.optimiser.options.steps == 5 and second.optimiser.options.keep == 3
    other_bank = build_config("offline", {**base, "bank": {"path": str(bank), "builtin": None, "subsample": 10}})
    assert models.captioner_for(other_bank) is not first
    assert models.model_key(a) == models.model_key(b) != models.model_key(other_bank)
