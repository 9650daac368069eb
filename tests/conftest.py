"""Shared fixtures: fake components for loop logic, tiny real-class models, the real SmolLM2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "MILS_CONFIG_DIR" not in os.environ:  # the key that seals media.json: the tests' own, not the user's
    import atexit
    import shutil
    import tempfile

    os.environ["MILS_CONFIG_DIR"] = tempfile.mkdtemp(prefix="mils-test-config-")
    atexit.register(shutil.rmtree, os.environ["MILS_CONFIG_DIR"], ignore_errors=True)  # no folder left per session

# the MILS release data (banks, prompts; ../shared/data beside the checkout, or MILS_SHARED_DATA): the
# tests that compare against it byte for byte are skipped, with this reason printed (-rs), where it is absent
RELEASE = Path(os.environ.get("MILS_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data") / "mils_release"
NO_RELEASE = f"the MILS release data is not at {RELEASE} (set MILS_SHARED_DATA to the folder holding mils_release/)"

from mils.protocols import Sample  # noqa: E402
from tests.fakes import WORDS, FakeGenerator, FakeScorer  # noqa: E402,F401


@pytest.fixture(scope="session", autouse=True)
def _stop_prefect_temporary_server():
    """Prefect stops its temporary server at interpreter exit and logs it, after pytest has closed
    the streams its handlers write to (screens of '--- Logging error ---'): stop it at session end."""
    yield
    import sys

    if "prefect" not in sys.modules:  # no flow ran (or prefect is not installed: the GPU machine's tests)
        return
    from prefect.server.api.server import SubprocessASGIServer

    for server in list(SubprocessASGIServer._instances.values()):
        server.stop()


def local_client(app):
    """A TestClient that calls from and to localhost (the local servers refuse other Host headers)."""
    from fastapi.testclient import TestClient

    return TestClient(app, base_url="http://127.0.0.1")


@pytest.fixture
def fake_scorer() -> FakeScorer:
    return FakeScorer()


@pytest.fixture
def fake_generator() -> FakeGenerator:
    return FakeGenerator()


@pytest.fixture
def fake_bank() -> list[str]:
    return [f"{a} {b}" for a in WORDS for b in WORDS if a != b][:200]


@pytest.fixture
def text_samples() -> list[Sample]:
    targets = ["red cat on sofa", "blue boat river", "man with hat", "dog grass ball", "bird sky tree"]
    return [Sample(id=f"s{i}", media=t) for i, t in enumerate(targets)]


# -- tiny real-class models -------------------------------------------------------------------

TINY_CLIP = "mils-test-tiny-vit"


@pytest.fixture(scope="session")
def tiny_clip_name(tmp_path_factory) -> str:
    """Register a tiny open_clip ViT config (random weights; real open_clip classes)."""
    import open_clip

    path = tmp_path_factory.mktemp("clipcfg") / f"{TINY_CLIP}.json"
    path.write_text(json.dumps({
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    }))
    open_clip.add_model_config(path)
    return TINY_CLIP


@pytest.fixture
def photo_dir(tmp_path) -> Path:
    from evaluation.sample_set import export

    export(tmp_path / "photos", ["chelsea", "coffee", "rocket"])
    return tmp_path / "photos"


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, smollm2):
    """A 2-layer random Llama saved with SmolLM2's real tokenizer and chat template (what vLLM loads)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    config = LlamaConfig(vocab_size=len(smollm2.tokenizer), hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)
    LlamaForCausalLM(config).save_pretrained(folder)
    smollm2.tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M-Instruct generator (GGUF converted once into the mils cache)."""
    from mils.components.build import build_generator
    from mils.components.plan import plan_run
    from mils.config.run_config import build_config

    return build_generator(plan_run(build_config("offline", {"generator": {"max_new_tokens": 96}})).generator)


def write_video(path: Path, n_frames: int, fps: int = 10, size: tuple[int, int] = (64, 48), step: int = 6) -> Path:
    """A small MPEG-4 video whose frame i is a flat grey of level i*step (so frames can be identified)."""
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(n_frames):
            image = np.full((size[1], size[0], 3), (i * step) % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_audio(path: Path, seconds: float = 1.0, rate: int = 22050, channels: int = 2) -> Path:
    import numpy as np
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    wave = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    sf.write(str(path), np.stack([wave] * channels, axis=1) if channels > 1 else wave, rate)
    return path


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def tiny_clap_dir(tiny_dir) -> Path:
    from tests.tiny_models import tiny_clap

    return tiny_clap(tiny_dir / "clap")


@pytest.fixture(scope="session")
def tiny_xclip_dir(tiny_dir) -> Path:
    from tests.tiny_models import tiny_xclip

    return tiny_xclip(tiny_dir / "xclip")


@pytest.fixture(scope="session")
def tiny_sd_dir(tiny_dir) -> Path:
    from tests.tiny_models import tiny_stable_diffusion

    return tiny_stable_diffusion(tiny_dir / "sd")


@pytest.fixture(scope="session")
def tiny_pickscore_dir(tiny_dir) -> Path:
    from tests.tiny_models import tiny_pickscore

    return tiny_pickscore(tiny_dir / "pickscore")


@pytest.fixture(scope="session")
def tiny_pix2pix_dir(tiny_dir) -> Path:
    from tests.tiny_models import tiny_instruct_pix2pix

    return tiny_instruct_pix2pix(tiny_dir / "pix2pix")


@pytest.fixture
def load_counts(monkeypatch):
    """Counts constructions of the fake generator and scorer (wrapping their registered factories),
    with the process's model cache emptied first."""
    import tests.fakes  # noqa: F401  (registers the fakes)
    from mils import registry
    from mils.run import model_cache as models

    counts = {"generator": 0, "scorer": 0}
    for kind, name in (("generator", "fake"), ("scorer", "fake_bow")):
        factory = registry.get_factory(kind, name)

        def counting(*args, _factory=factory, _kind=kind, **kwargs):
            counts[_kind] += 1
            return _factory(*args, **kwargs)

        monkeypatch.setitem(registry._FACTORIES, (kind, name), counting)
    monkeypatch.setattr(models, "_MODELS", {})
    monkeypatch.setattr(models, "_RUNNERS", {})
    return counts


def write_run_record(folder: Path, **parts) -> Path:
    """A run.json as the suite writes one (a real config, the result key, the folder) with ``parts``
    (score_gain, gain, reports, cost...) in place: what a test of a reader of records starts from."""
    from mils.config.run_config import build_config

    record = {"version": 1, "kind": "benchmark", "result_key": "0123456789ab", "results_dir": str(folder),
              "config": build_config("offline", {"name": "demo"}).model_dump(mode="json"), **parts}
    path = Path(folder) / "run.json"
    path.write_text(json.dumps(record))
    return path


def paired(a: float, b: float, low: float, high: float, p_not_better: float = 0.1, n: int = 6) -> dict:
    """A paired delta as a record keeps it (evaluation.paired.PairedDelta.as_dict)."""
    return {"a": a, "b": b, "delta": b - a, "low": low, "high": high, "p_not_better": p_not_better, "n": n}
