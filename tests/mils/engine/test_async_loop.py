"""The async schedule: each sample advances on its own, with the lockstep loop's results."""

import threading

import pytest

from mils.components.plan import plan_run
from mils.config.task_specs import get_task
from mils.engine.loop import LoopOptions, Optimiser
from mils.engine.schedule import run_async
from mils.engine.seeding import derive_seed
from mils.errors import InputError
from tests.fakes import FakeGenerator


class ConcurrentFake(FakeGenerator):
    """The fake LLM, callable from several threads at once (each reply carries its own usage)."""

    concurrent = True


def optimiser(generator, scorer, bank, **options):
    return Optimiser(generator, scorer, get_task("image_captioning").template, bank, scorer.embed_texts(bank),
                     LoopOptions(**{"steps": 4, "keep": 5, "requested": 5, "seed": 3, **options}))


@pytest.mark.parametrize("options", [{}, {"exploration": 0.4}, {"exploration": 0.4, "exploration_style": "official"},
                                     {"patience": 1}])
def test_async_results_equal_the_lockstep_loops(options, fake_scorer, fake_bank, text_samples):
    lockstep = optimiser(FakeGenerator(), fake_scorer, fake_bank, **options).run(text_samples)
    free = run_async(optimiser(ConcurrentFake(), fake_scorer, fake_bank, **options), text_samples)
    assert [(r.sample_id, r.history, r.kept, r.stopped_early_at, r.raw_replies) for r in free] == \
           [(r.sample_id, r.history, r.kept, r.stopped_early_at, r.raw_replies) for r in lockstep]
    assert [[(c.step, c.generated_tokens, c.candidates_scored) for c in r.cost] for r in free] == \
           [[(c.step, c.generated_tokens, c.candidates_scored) for c in r.cost] for r in lockstep]


def test_a_fast_sample_does_not_wait_for_a_slow_one(fake_scorer, fake_bank, text_samples):
    """s1's first reply is held back until s0 has sent its third prompt (in lockstep s0 could never get
    there: its second step waits for every first-step reply), and s0's fourth waits until s1 has
    asked once (one sample after the other could never get there)."""
    owner = {derive_seed(3, s.id, step, "generate"): s.id for s in text_samples[:2] for step in range(1, 5)}
    s0_at_step_3, s1_started, calls = threading.Event(), threading.Event(), []

    class Ordered(ConcurrentFake):
        def generate(self, prompts, seeds):
            sample = owner[seeds[0]]
            calls.append(sample)
            if sample == "s0" and calls.count("s0") == 3:
                s0_at_step_3.set()
            if sample == "s0" and calls.count("s0") == 4:
                assert s1_started.wait(timeout=30), "s1 never asked while s0 went on"
            if sample == "s1" and calls.count("s1") == 1:
                s1_started.set()
                assert s0_at_step_3.wait(timeout=30), "s0 waited for s1's reply"
            return super().generate(prompts, seeds)

    results = run_async(optimiser(Ordered(), fake_scorer, fake_bank), text_samples[:2])
    assert [len(r.history) for r in results] == [5, 5] and sorted(calls) == ["s0"] * 4 + ["s1"] * 4


def test_async_needs_a_generator_that_takes_concurrent_requests(tmp_path, fake_scorer, fake_bank):
    from mils.config.run_config import build_config
    from mils.run.runner import TaskRunner

    (tmp_path / "bank.txt").write_text("\n".join(fake_bank))
    config = build_config("offline", {"bank": {"path": str(tmp_path / "bank.txt"), "builtin": None},
                                      "schedule": "async", "cache_dir": str(tmp_path)})
    with pytest.raises(InputError, match="schedule 'async'.*lockstep"):
        TaskRunner(plan_run(config), generator=FakeGenerator(), scorer=fake_scorer)


def test_async_cost_is_measured_inside_the_scorer_lock(monkeypatch, fake_bank, text_samples):
    """Every sample's first reply arrives at once (a barrier), so all wait for the scorer together;
    a clock that moves only while the scorer works (1 per call), and a render per call, show
    whether a sample was charged for another's scoring. Each must pay exactly its own call."""
    import time
    import types

    import mils.engine.loop
    from tests.fakes import FakeScorer

    clock = [0.0]
    monkeypatch.setattr(mils.engine.loop, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    arrived = threading.Barrier(len(text_samples), timeout=30)

    class Together(ConcurrentFake):
        calls = 0

        def generate(self, prompts, seeds):
            Together.calls += 1
            if Together.calls <= len(text_samples):
                arrived.wait()
            return super().generate(prompts, seeds)

    class Rendering(FakeScorer):
        images_made = 0

        def similarity(self, sample_emb, text_emb):
            time.sleep(0.05)  # the others queue at the lock meanwhile
            clock[0] += 1.0
            self.images_made += 1
            return super().similarity(sample_emb, text_emb)

    scorer = Rendering()
    results = run_async(optimiser(Together(), scorer, fake_bank, steps=2), text_samples)
    charged = [(c.scorer_seconds, c.renders) for r in results for c in r.cost if c.step >= 1 and c.candidates_scored]
    assert charged and set(charged) == {(1.0, 1.0)}


def test_requests_in_flight_reach_the_bound_and_never_exceed_it(fake_scorer, fake_bank):
    from mils.protocols import Sample

    samples = [Sample(f"s{i}", f"caption {i}") for i in range(40)]
    lock, now, peak = threading.Lock(), [0], [0]

    class Slow(ConcurrentFake):
        def generate(self, prompts, seeds):
            with lock:
                now[0] += 1
                peak[0] = max(peak[0], now[0])
            import time

            time.sleep(0.01)
            try:
                return super().generate(prompts, seeds)
            finally:
                with lock:
                    now[0] -= 1

    run_async(optimiser(Slow(), fake_scorer, fake_bank, steps=2), samples, in_flight=6)
    assert peak[0] == 6  # 40 samples wait: the bound is reached, and never passed


def test_two_thousand_samples_run_on_a_bounded_number_of_threads_and_scoring_is_batched(fake_bank):
    from mils.protocols import Sample
    from tests.fakes import FakeScorer

    samples = [Sample(f"s{i}", f"a photo number {i}") for i in range(2000)]
    threads, calls = [0], [0]

    class Counting(ConcurrentFake):
        def generate(self, prompts, seeds):
            threads[0] = max(threads[0], threading.active_count())
            return super().generate(prompts, seeds)

    class CountingScorer(FakeScorer):
        def embed_texts(self, texts):
            calls[0] += 1
            return super().embed_texts(texts)

    scorer = CountingScorer()
    before = threading.active_count()
    results = run_async(optimiser(Counting(), scorer, fake_bank, steps=2), samples, in_flight=16, score_batch=64)
    assert len(results) == 2000 and all(len(r.history) == 3 for r in results)
    assert threads[0] <= before + 16  # the request pool, not a thread per sample
    assert calls[0] - 1 < 4000 / 2  # 4,000 replies in fewer scorer calls (the bank: 1 call)


def test_an_endpoint_s_requests_go_out_from_one_event_loop_without_a_thread_each(fake_bank):
    """The openai backend hands the async schedule a future per request (``submit``): 300 samples
    with 16 in flight add one thread (its event loop), not 16 or 300, and give lockstep's results;
    through the response cache, a second run sends nothing."""
    from mils.components.response_cache import CachedGenerator, ResponseCache
    from mils.engine.sampling import SamplingOptions
    from mils.generators.openai_api import OpenAIGenerator
    from mils.protocols import Sample
    from tests.fakes import FakeScorer
    from tests.openai_fake import FakeEndpoint

    ours = lambda: [t for t in threading.enumerate() if "process_request" not in t.name]  # noqa: E731 (not the server's)
    peak = [0]

    class Counting(FakeScorer):
        def embed_texts(self, texts):
            peak[0] = max(peak[0], len(ours()))
            return super().embed_texts(texts)

    endpoint = FakeEndpoint()
    samples = [Sample(f"p{i}", f"{fake_bank[i % len(fake_bank)]} on a table") for i in range(300)]
    try:
        def run(schedule, cache_dir=None):
            generator = OpenAIGenerator(endpoint.base_url, "fake-llm", SamplingOptions(max_new_tokens=32),
                                        max_concurrency=16)
            if cache_dir is not None:
                generator = CachedGenerator(generator, ResponseCache(cache_dir), "openai|fake-llm", {})
            opt = optimiser(generator, Counting(), fake_bank, steps=2)
            results = run_async(opt, samples) if schedule == "async" else opt.run_batched(samples, 300)
            generator.close()
            return [(r.sample_id, r.history, r.kept) for r in results]

        lockstep = run("lockstep")
        before = len(ours())
        assert run("async") == lockstep and peak[0] <= before + 1
        import tempfile

        with tempfile.TemporaryDirectory() as cache:
            assert run("async", cache) == lockstep
            sent = endpoint.requests
            assert run("async", cache) == lockstep and endpoint.requests == sent  # every reply from the cache
    finally:
        endpoint.close()


def test_step_0_runs_a_batch_at_a_time_as_room_frees_and_each_result_is_handed_over_when_done(fake_scorer, fake_bank,
                                                                                               text_samples):
    """The flow hands the async schedule a whole shard: step 0 must not embed every sample at once,
    and each result must reach the results folder when its sample finishes, not at the end."""
    opt = optimiser(ConcurrentFake(), fake_scorer, fake_bank)
    sizes, handed = [], []
    initial = opt.initial
    opt.initial = lambda batch: (sizes.append(len(batch)), initial(batch))[1]
    results = run_async(opt, text_samples, in_flight=2, start_batch=2, on_done=handed.append)
    assert max(sizes) <= 2 and sum(sizes) == len(text_samples) and len(sizes) > 1
    assert sorted(r.sample_id for r in handed) == sorted(s.id for s in text_samples)
    assert {r.sample_id: r.history for r in handed} == {r.sample_id: r.history for r in results}
    lockstep = optimiser(FakeGenerator(), fake_scorer, fake_bank).run(text_samples)
    assert [r.history for r in results] == [r.history for r in lockstep]  # same results, same order
