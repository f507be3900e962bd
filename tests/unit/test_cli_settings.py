"""The settings table behind `run --help` / `agent --help`, EXTRA_ENI_TAGS, the
exit codes, `check -o json` and the status table: pure, no servers."""

from __future__ import annotations

import json
from operator import attrgetter

import pytest

from eni_controller import cli, package_version
from eni_controller.agent.settings import AGENT_SETTINGS, AgentSettings
from eni_controller.config import SETTINGS, Config
from eni_controller.envvars import ConfigError, Setting, format_duration, parse_duration
from eni_controller.preflight.report import failed, passed, render_json, warned
from eni_controller.reconcile import tags
from eni_controller.statusview import describe_all


@pytest.mark.parametrize(
    ("command", "table", "defaults"),
    [("run", SETTINGS, Config()), ("agent", AGENT_SETTINGS, AgentSettings())],
)
def test_help_lists_every_setting_with_its_default(
    command: str, table: tuple[Setting, ...], defaults: object, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    assert done.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    for setting in table:
        (line,) = [line for line in lines if line.split()[:1] == [setting.env]]
        assert line.split()[1] == setting.default(defaults).split()[0]
    assert "  3  configuration error" in "\n".join(lines)


def test_every_config_field_is_in_the_table() -> None:
    paths = {s.path for s in SETTINGS}
    assert {
        f for f in Config.__dataclass_fields__ if f not in ("circuit_breaker", "ec2_rate_limits")
    } <= {p.split(".")[0] for p in paths}
    assert len({s.env for s in SETTINGS}) == len(SETTINGS)


@pytest.mark.parametrize(
    "setting", [s for s in SETTINGS if s.default_text is None], ids=attrgetter("env")
)
def test_a_shown_default_reads_back_as_the_default(setting: Setting) -> None:
    """What --help shows, set in the environment, gives the default itself."""
    shown = setting.default(Config())
    if shown == "unset":
        return
    config = Config.from_env({setting.env: shown})
    assert attrgetter(setting.path)(config) == attrgetter(setting.path)(Config())


@pytest.mark.parametrize("seconds", [0.25, 2.0, 15.0, 90.0, 300.0, 1800.0, 5400.0, 3600.0])
def test_format_duration_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_version_flag_and_subcommand_agree(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    flag = capsys.readouterr().out
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out == flag == f"{package_version()}\n"


def test_usage_error_is_2_and_differs_from_configuration_and_runtime() -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["no-such-command"])
    assert done.value.code == cli.EXIT_USAGE_ERROR == 2
    assert len({cli.EXIT_RUNTIME_ERROR, cli.EXIT_USAGE_ERROR, cli.EXIT_CONFIG_ERROR}) == 3


GOOD_TAGS = [
    ("team=net", (("team", "net"),)),
    (" team = net , cost-center=42 ", (("team", "net"), ("cost-center", "42"))),
    ("empty=", (("empty", ""),)),
    ("k" * 128 + "=" + "v" * 256, (("k" * 128, "v" * 256),)),
    (
        ",".join(f"k{i}=v" for i in range(tags.EXTRA_TAGS_MAX)),
        tuple((f"k{i}", "v") for i in range(tags.EXTRA_TAGS_MAX)),
    ),
]


@pytest.mark.parametrize(("raw", "want"), GOOD_TAGS)
def test_extra_eni_tags_parse(raw: str, want: tuple[tuple[str, str], ...]) -> None:
    assert Config.from_env({"EXTRA_ENI_TAGS": raw}).extra_eni_tags == want


BAD_TAGS = [
    ("team", "is not key=value"),
    ("=net", "is not key=value"),
    ("a=b,,c=d", "is not key=value"),
    ("aws:team=x", "aws: prefix is reserved"),
    ("AWS:team=x", "aws: prefix is reserved"),
    ("Name=mine", "one the controller sets itself"),
    (f"{tags.NODEENI_KEY}=x", "one the controller sets itself"),
    (f"{tags.NO_MANAGE_KEY}=false", "one the controller sets itself"),
    ("kubernetes.io/cluster/other=owned", "one the controller sets itself"),
    ("k" * 129 + "=v", "too long"),
    ("k=" + "v" * 257, "too long"),
    ("a=1,a=2", "given twice"),
    (",".join(f"k{i}=v" for i in range(tags.EXTRA_TAGS_MAX + 1)), "EC2 allows 50 per ENI"),
]


@pytest.mark.parametrize(("raw", "message"), BAD_TAGS)
def test_extra_eni_tags_refused_with_one_clear_problem(raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env({"EXTRA_ENI_TAGS": raw})
    (problem,) = caught.value.problems
    assert problem.startswith("EXTRA_ENI_TAGS=")
    assert message in problem


def test_extra_tags_fill_the_ec2_limit_exactly_and_never_replace_ours() -> None:
    extra = {f"k{i}": "v" for i in range(tags.EXTRA_TAGS_MAX)}
    ours = tags.eni_tags(
        nodeeni="n", uid="u", node="node", instance_id="i-1", subnet_id="subnet-1", cluster_name="c"
    )
    both = tags.eni_tags(
        nodeeni="n",
        uid="u",
        node="node",
        instance_id="i-1",
        subnet_id="subnet-1",
        cluster_name="c",
        extra={**extra, "Name": "theirs"},
    )
    assert len(ours) + len(extra) == tags.TAGS_PER_RESOURCE_MAX
    assert {k: both[k] for k in ours} == dict(ours)  # ours win over a key given in extra
    assert {k: both[k] for k in extra} == extra


def test_check_json_has_every_finding_and_the_exit_code() -> None:
    findings = [
        passed("kubernetes", "v1.20"),
        warned("region", "no node"),
        failed("ec2:X", "denied"),
    ]
    doc = json.loads(render_json(findings))
    assert doc["findings"] == [
        {"check": "kubernetes", "result": "PASS", "detail": "v1.20"},
        {"check": "region", "result": "WARN", "detail": "no node"},
        {"check": "ec2:X", "result": "FAIL", "detail": "denied"},
    ]
    assert (doc["passed"], doc["warnings"], doc["failed"], doc["exitCode"]) == (1, 1, 1, 1)
    assert json.loads(render_json(findings[:2]))["exitCode"] == 0


def test_status_table_shows_conditions_and_attachments() -> None:
    obj = {
        "metadata": {"name": "multus"},
        "status": {
            "attachedCount": 1,
            "desiredCount": 2,
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "Progressing", "message": "1 of 2"},
            ],
            "attachments": [
                {
                    "nodeID": "n1",
                    "instanceID": "i-1",
                    "eniID": "eni-1",
                    "deviceIndex": 2,
                    "status": "attached",
                },
            ],
        },
    }
    text = describe_all([obj, {"metadata": {"name": "empty"}}])
    lines = [line.split() for line in text.splitlines()]
    assert ["multus", "False", "1", "2"] in lines
    assert ["Ready", "False", "Progressing", "1", "of", "2"] in lines
    assert ["n1", "i-1", "eni-1", "2", "-", "attached"] in lines
    assert ["empty", "Unknown", "0", "0"] in lines
    assert text.index("empty") < text.index("multus")  # by name
    assert describe_all([]) == "no NodeENIs"
