"""Only a transient failure (the network, a hub) is retried; a config mistake fails at once."""

import time

import pytest
from prefect import flow, task
from prefect.states import Failed

from mils.errors import InputError, MissingInputError
from mils.registry import UnknownComponentError
from tasks.benchmark import generate_bank_task, prepare_models_task, transient


@pytest.mark.parametrize("error, retried", [
    (ConnectionError("connection reset by peer"), True),
    (OSError("We couldn't connect to 'https://huggingface.co'"), True),
    (UnknownComponentError("unknown scorer 'clipp'; did you mean 'clip'?"), False),
    (MissingInputError("bank file not found: banks/x.txt"), False),
    (InputError("loop.keep must be >= 1"), False),
    (TypeError("a bug"), False),
])
def test_what_is_retried(error, retried):
    assert transient(None, None, Failed(data=error)) is retried


def test_the_model_and_bank_tasks_use_it():
    for t in (prepare_models_task, generate_bank_task):
        assert t.retries == 2 and t.retry_condition_fn is transient


def test_a_config_mistake_is_not_retried_in_a_real_flow():
    calls = []

    @task(retries=2, retry_delay_seconds=30, retry_condition_fn=transient)
    def load():
        calls.append(1)
        raise UnknownComponentError("unknown scorer 'clipp'")

    @flow
    def run():
        return load()

    start = time.monotonic()
    with pytest.raises(UnknownComponentError):
        run()
    assert calls == [1] and time.monotonic() - start < 30  # no 30 s retry sleep
