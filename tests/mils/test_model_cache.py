from mils.components.plan import plan_run
from mils.config.run_config import build_config
from mils.run import model_cache as models


def _runner(overrides):
    return models.runner_for(plan_run(build_config("offline", overrides)))


def _base(tmp_path, fake_bank):
    bank = tmp_path / "bank.txt"
    bank.write_text("\n".join(fake_bank))
    return {"plugins": ["tests.fakes"], "generator": {"backend": "fake", "model": "fake"},
            "scorer": {"name": "fake_bow"}, "bank": {"path": str(bank), "builtin": None},
            "cache_dir": str(tmp_path / "cache")}


def test_models_are_loaded_once_across_loop_and_bank_variants(tmp_path, fake_bank, load_counts):
    base = _base(tmp_path, fake_bank)
    first = _runner({**base, "loop": {"steps": 2}})
    second = _runner({**base, "loop": {"steps": 5, "keep": 3}})
    assert second is first  # a loop change reuses the captioner and its bank embeddings
    assert second.optimiser.options.steps == 5 and second.optimiser.options.keep == 3
    sizes = [10, 50, 100]  # a bank-size sweep: other banks, the same models
    captioners = [_runner({**base, "bank": {**base["bank"], "subsample": n}}) for n in sizes]
    assert [len(c.bank) for c in captioners] == sizes
    assert load_counts == {"generator": 1, "scorer": 1}
    assert all(c.generator is first.generator and c.scorer is first.scorer for c in captioners)


def test_another_generator_setting_loads_new_models(tmp_path, fake_bank, load_counts):
    base = _base(tmp_path, fake_bank)
    _runner(base)
    _runner({**base, "generator": {**base["generator"], "temperature": 0.9}})
    assert load_counts == {"generator": 2, "scorer": 1}  # the scorer is shared
