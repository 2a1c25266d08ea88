"""The TOML config: shipped examples validate, dump/load round-trips, overrides, errors."""

from pathlib import Path

import pydantic
import pytest

from fair_core import config as cfg
from fair_core import experiment
from fair_core.errors import ConfigError
from fair_core.host import get_host

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate_and_round_trip(path, tmp_path):
    if "variants" in cfg.read(path):  # an experiment: its base config, and every variant's
        exp = experiment.load(path)
        assert exp.arms and all(a.config.task == exp.base.task for a in exp.arms)
        config = exp.base
    else:
        config = cfg.load(path)
    assert config.task.name in get_host().names("tasks")
    assert all(t.backend in get_host().names("teachers") for t in config.teachers)
    again = tmp_path / "again.toml"
    again.write_text(cfg.dump(config))
    assert cfg.load(again) == config


def test_config_is_frozen():
    config = cfg.load(None)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        config.rounds = 3


def test_overrides_win(tmp_path):
    path = CONFIGS[0].parent / "demo.toml"
    config = cfg.load(path, ["train.alpha=0.25", "rounds=2", "committee.policy=median", 'task.name="gsm8k"'])
    assert (config.train.alpha, config.rounds, config.committee.policy, config.task.name) == (
        0.25,
        2,
        "median",
        "gsm8k",
    )


@pytest.mark.parametrize(
    "data, message",
    [
        ({"train": {"alpha": 1.5}}, "train.alpha"),
        ({"teachers": [{"name": "a", "modle": "x"}]}, "unknown key 'teachers.0.modle'"),
        ({"teachers": [{"name": "a"}, {"name": "a"}]}, "teacher name 'a' is used twice"),
        ({"committee": {"assignment": "some"}}, "committee.assignment"),
        ({"committee": {"distil_from": ["b"]}, "teachers": [{"name": "a"}]}, "'b', which is not a teacher"),
        # a secret in params would be sent, stored and copied into the run's config.toml
        ({"teachers": [{"name": "a", "params": {"api_key": "sk-1"}}]}, "teachers.0.params: holds a secret ('api_key')"),
        (
            {"teachers": [{"name": "a", "params": {"extra_headers": {"Authorization": "Bearer x"}}}]},
            "holds a secret ('Authorization')",
        ),
        ({"teachers": [{"name": "a", "options": {"hf_token": "x"}}]}, "teachers.0.options: holds a secret"),
    ],
)
def test_errors_name_the_key(data, message):
    with pytest.raises(ConfigError) as e:
        cfg.validate(data)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_bad_override():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        cfg.load(None, ["alpha"])


def test_override_reaches_a_teacher_by_name():
    path = CONFIGS[0].parent / "demo.toml"
    config = cfg.load(
        path,
        [
            "teachers.gemini.model=gemini/gemini-2.5-pro",
            "teachers.gpt.params.temperature=0.2",
            "teachers.mistral.rpm=30",
        ],
    )
    by_name = {t.name: t for t in config.teachers}
    assert by_name["gemini"].model == "gemini/gemini-2.5-pro"
    assert by_name["gpt"].params["temperature"] == 0.2
    assert by_name["gpt"].params["max_tokens"] == cfg.load(path).teachers[0].params["max_tokens"]  # kept
    assert by_name["mistral"].rpm == 30


@pytest.mark.parametrize(
    "override, message",
    [
        ("teachers.claude.model=x", "no entry of teachers is named 'claude': use one of gpt, gemini, mistral"),
        ("teachers.gpt=x", "as teachers.NAME.KEY=VALUE (names: gpt, gemini, mistral)"),
        ("train.alpha.x=1", "'alpha' is not a table"),
    ],
)
def test_bad_teacher_override_is_one_line(override, message):
    with pytest.raises(ConfigError) as e:
        cfg.load(CONFIGS[0].parent / "demo.toml", [override])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_teacher_override_without_teachers():
    with pytest.raises(ConfigError, match=r"use one of \(none configured\)"):
        cfg.load(None, ["teachers.gpt.model=x"])


def test_a_config_that_leaves_stages_out_runs_every_stage_of_the_pipeline(tmp_path):
    """The schema knows no stage names: it keeps None, which the pipeline reads as all of its
    stages, and a config saved and read back still leaves the key out."""
    config = cfg.load(None)
    assert config.stages is None
    pipeline = get_host().pipeline
    assert pipeline.ordered(config.stages) == pipeline.names()
    assert "stages" not in cfg.dump(config)
    path = tmp_path / "c.toml"
    path.write_text(cfg.dump(config))
    assert cfg.load(path) == config
    named = cfg.load(None, ['stages=["solve", "explain"]'])
    assert pipeline.ordered(named.stages) == ["explain", "solve"]
    with pytest.raises(ConfigError, match="names no stage"):
        cfg.load(None, ["stages=[]"])
