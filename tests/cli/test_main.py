from pathlib import Path

import pytest

from cli import main as cli_main
from mils.errors import InputError


def _command(error):
    def run(args):
        raise error
    return run


@pytest.fixture
def failing(monkeypatch):
    """`mils eval` replaced by a command that raises the given error."""
    def use(error):
        monkeypatch.setattr("cli.evaluate.cmd_eval", _command(error))
    return use


def test_user_errors_print_one_line(failing, capsys):
    failing(InputError("refs.json is not valid JSON"))
    assert cli_main.main(["eval", "--predictions", "p", "--references", "r"]) == 2
    assert capsys.readouterr().err == "mils: error: refs.json is not valid JSON\n"


def test_bugs_show_their_traceback(failing):
    failing(KeyError("x"))  # a real bug is not dressed up as a user error
    with pytest.raises(KeyError):
        cli_main.main(["eval", "--predictions", "p", "--references", "r"])


def test_verbose_shows_the_traceback_of_user_errors_too(failing):
    failing(InputError("bad"))
    with pytest.raises(InputError):
        cli_main.main(["-v", "eval", "--predictions", "p", "--references", "r"])


def test_unknown_components_are_user_errors(capsys, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("profile: offline\nscorer: {name: open-clip}\ndataset: {kind: sample}\n")
    assert cli_main.main(["run", str(config)]) == 2
    assert "Did you mean 'open_clip'" in capsys.readouterr().err


def test_demo_uses_the_tuned_settings_unless_told_otherwise():
    from cli.run import demo_config
    from mils.config.profiles import DEMO_SETTINGS

    parser = cli_main.build_parser()
    config = demo_config(parser.parse_args(["demo"]))
    assert config.loop.keep == DEMO_SETTINGS["loop"]["keep"] and config.generator.temperature == 0.8
    assert config.dataset.kind == "sample" and config.name == "demo"
    assert demo_config(parser.parse_args(["demo", "--keep", "10"])).loop.keep == 10
    assert demo_config(parser.parse_args(["demo", "--profile", "paper", "--bank", "b.txt"])).loop.keep == 50


def test_t2i_is_the_benchmark_flow_over_the_configs_drawbench_prompts_or_those_given(monkeypatch, tmp_path, capsys):
    (tmp_path / "DrawBench.csv").write_text("Prompts,Category\nA red colored car.,Colors\n,Empty\nA cube on a ball.,Positional\n")
    config = tmp_path / "t2i.yaml"
    config.write_text(f"profile: paper\ntask: text_to_image\ndataset:\n  kind: drawbench\n"
                      f"  args: {{csv_path: {tmp_path / 'DrawBench.csv'}}}\n")
    seen = []
    monkeypatch.setattr("cli.run.run_and_report", lambda config: seen.append(config) or 0)
    assert cli_main.main(["t2i", "--config", str(config), "--out", str(tmp_path / "out")]) == 0
    from evaluation.datasets import config_dataset
    from mils.components.plan import plan_run

    drawn = config_dataset(seen[0].dataset).samples  # the samples the flow gets: each prompt is its sample's text
    assert [(s.id, s.as_sample().media) for s in drawn] == [("drawbench-000", "A red colored car."),
                                                             ("drawbench-002", "A cube on a ball.")]
    assert seen[0].task == "text_to_image" and plan_run(seen[0]).results_dir.parent == tmp_path / "out"
    # prompts given on the command line, beside the meta-prompt choice (--prompts)
    assert cli_main.main(["t2i", "a red cat", "two boats", "--profile", "paper", "--prompts", "official"]) == 0
    assert seen[1].dataset.kind == "prompts" and seen[1].prompts == "official"
    assert [s.as_sample().media for s in config_dataset(seen[1].dataset).samples] == ["a red cat", "two boats"]
    assert plan_run(seen[1]).results_dir.parent == Path(seen[1].output_dir) and seen[1].metrics == ()


def test_prefects_temporary_server_gets_time_to_start_and_a_failure_is_one_line(monkeypatch, capsys):
    """Issue 47 (under load): at load 8 a `mils run` failed with Prefect's 20 s start-up limit."""
    import cli.evaluate
    from cli.main import EPHEMERAL_STARTUP, main

    monkeypatch.delenv(EPHEMERAL_STARTUP, raising=False)

    def slow_server(args):
        raise RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server. stdout: ...")

    monkeypatch.setattr(cli.evaluate, "cmd_compare", slow_server)
    assert main(["compare", "a", "b"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"set {EPHEMERAL_STARTUP} higher" in err and "within 120 s" in err
    import os

    assert os.environ[EPHEMERAL_STARTUP] == "120"
    monkeypatch.setenv(EPHEMERAL_STARTUP, "300")  # the user's own setting wins
    assert main(["compare", "a", "b"]) == 2 and "within 300 s" in capsys.readouterr().err


def test_a_flow_failing_on_a_user_error_logs_no_traceback_above_the_one_line(capsys, monkeypatch):
    """Issue 47 (low): Prefect printed 1-4 tracebacks above every failed flow's `mils: error:`."""
    import logging

    import cli.evaluate
    from cli.main import main
    from mils.errors import InputError

    def failing_flow(args):
        try:
            raise InputError("the dataset has no samples")
        except InputError:
            logging.getLogger("prefect.flow_runs").error("Encountered exception during execution", exc_info=True)
            raise

    import io

    monkeypatch.setattr(cli.evaluate, "cmd_compare", failing_flow)
    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    logging.getLogger("prefect.flow_runs").addHandler(handler)
    try:
        assert main(["compare", "a", "b"]) == 2
    finally:
        logging.getLogger("prefect.flow_runs").removeHandler(handler)
    assert "Encountered exception" in logged.getvalue() and "Traceback" not in logged.getvalue()
    assert capsys.readouterr().err.endswith("mils: error: the dataset has no samples\n")


def test_prefects_finished_state_lines_are_not_shown_by_default():
    import logging

    from cli.main import _not_every_finished_state

    def record(msg, level=logging.INFO):
        return logging.LogRecord("prefect.task_runs", level, __file__, 1, msg, None, None)

    assert not _not_every_finished_state(record("Finished in state Completed()"))
    assert _not_every_finished_state(record("Finished in state Failed('boom')", logging.ERROR))
    assert _not_every_finished_state(record("shard from t000: step 1/2"))


def test_an_unknown_flag_shows_the_usage_of_its_subcommand(capsys):
    """Issue 48, item 5: the usage of all 24 commands was printed for a typo in one."""
    import pytest

    from cli.main import main

    with pytest.raises(SystemExit) as stop:
        main(["export", "official", "RUN", "OUT", "--nope"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith("usage: mils export official")
    assert "unrecognized arguments: --nope" in err and "caption,t2i" not in err
