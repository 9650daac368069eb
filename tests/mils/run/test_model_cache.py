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


def test_torch_computes_with_the_same_threads_in_a_worker_process_as_in_the_flows(tmp_path):
    """Issue 47 (across runners): a Dask worker starts with OMP_NUM_THREADS=1, the flow's process
    with every core; scores differed in the 7th digit. A shard now sets the count itself."""
    import os
    import subprocess
    import sys

    from mils.run.model_cache import intra_op_threads

    probe = ("import torch\nfrom mils.config.run_config import build_config\nfrom mils.components.plan import plan_run\n"
             "from mils.run import model_cache\n"
             "model_cache.models_for = lambda plan: (None, None)\n"
             "model_cache.TaskRunner = lambda plan, generator, scorer: type('R', (), {'set_loop': lambda self, p: None})()\n"
             "before = torch.get_num_threads()\n"
             "model_cache.runner_for(plan_run(build_config('offline')))\n"
             "print(before, torch.get_num_threads())\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # what Dask's nanny gives its workers
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))
    assert out.returncode == 0, out.stderr[-2000:]
    before, after = map(int, out.stdout.split())
    assert before == 1 and after == intra_op_threads()
