"""The deploy options against cold starts: provisioned concurrency and the secrets extension's layer.

Both are off by default.  The packaged template is linted with them on and
off, and transformed with AWS's own SAM translator to check that API
Gateway really invokes the alias that carries the provisioned concurrency.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.test_package import build_package

ROOT = Path(__file__).resolve().parents[2]
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
STAGES = ("dev", "prod")
PARAMETER = "ApiHandlerProvisionedConcurrency"
ALIAS = "APIHandlerAliaslive"
# What `chalice package` writes for a stage whose "layers" holds the extension (one region's ARN).
EXTENSION_LAYER = "arn:aws:lambda:us-east-1:177933569100:layer:AWS-Parameters-and-Secrets-Lambda-Extension:12"


@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, Any]]:
    return {stage: json.loads((build_package(stage) / "sam.json").read_text()) for stage in STAGES}


def options_on(template: dict[str, Any], provisioned: int) -> dict[str, Any]:
    """The template as deployed with provisioned concurrency and the extension's layer."""
    on = copy.deepcopy(template)
    on["Parameters"][PARAMETER]["Default"] = provisioned
    for function in ("APIHandler", "BasicAuth"):
        on["Resources"][function]["Properties"]["Layers"] = [EXTENSION_LAYER]
    return on


def cfn_lint(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--regions", "us-east-1", "eu-west-1", "--", *map(str, paths)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def transformed(template: dict[str, Any], provisioned: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The CloudFormation SAM's transform makes of the template, as after `aws cloudformation package`."""
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:  # the template names no SAM policy templates
        def load(self) -> dict[str, str]:
            return {}

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    packaged = copy.deepcopy(template)
    for function in ("APIHandler", "BasicAuth"):
        packaged["Resources"][function]["Properties"]["CodeUri"] = "s3://artifacts/0123456789abcdef"
    stage = packaged["Parameters"]["ChaliceStage"]["Default"]
    result: dict[str, Any] = transform(
        packaged, {"ChaliceStage": stage, PARAMETER: str(provisioned)}, NoManagedPolicies()
    )
    return result


# --- defaults ------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_provisioned_concurrency_is_off_by_default_and_capped_by_reserved_concurrency(
    templates: dict[str, dict[str, Any]], stage: str
) -> None:
    template = templates[stage]
    parameter = template["Parameters"][PARAMETER]
    reserved = template["Resources"]["APIHandler"]["Properties"]["ReservedConcurrentExecutions"]
    assert parameter["Default"] == 0 and parameter["MinValue"] == 0
    assert parameter["MaxValue"] == reserved  # Lambda refuses more than the function may run
    config = template["Resources"]["APIHandler"]["Properties"]["ProvisionedConcurrencyConfig"]
    assert config == {
        "Fn::If": [
            "HasProvisionedConcurrency",
            {"ProvisionedConcurrentExecutions": {"Ref": PARAMETER}},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert template["Conditions"]["HasProvisionedConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": PARAMETER}, "0"]}]
    }  # fmt: skip


@pytest.mark.parametrize("stage", STAGES)
def test_stages_carry_the_extension_layer_setting_off(stage: str) -> None:
    settings = CONFIG["stages"][stage]
    assert settings["layers"] == []  # the extension's layer ARN goes here to turn it on
    # Our loader caches secrets already; the extension's cache would keep a rotated password
    # from being re-read when the database refuses the old one.
    assert settings["environment_variables"]["PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED"] == "false"


# --- cfn-lint, on and off --------------------------------------------------------------------


def test_cfn_lint_accepts_the_templates_with_the_options_on_and_off(
    templates: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    paths = []
    for stage, template in templates.items():
        for name, variant in (("off", template), ("on", options_on(template, 2))):
            path = tmp_path / f"{stage}-{name}.json"
            path.write_text(json.dumps(variant))
            paths.append(path)
    result = cfn_lint(paths)
    assert result.returncode == 0, result.stdout + result.stderr


# --- what SAM makes of it ---------------------------------------------------------------------


@pytest.mark.parametrize("provisioned", [0, 3])
def test_api_gateway_invokes_the_alias_that_carries_provisioned_concurrency(
    templates: dict[str, dict[str, Any]], provisioned: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources = transformed(templates["prod"], provisioned, monkeypatch)["Resources"]
    alias = resources[ALIAS]
    assert alias["Type"] == "AWS::Lambda::Alias" and alias["Properties"]["FunctionName"] == {"Ref": "APIHandler"}
    version = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
    assert resources[version]["Type"] == "AWS::Lambda::Version"  # a new one for every new package
    assert alias["Properties"]["ProvisionedConcurrencyConfig"]["Fn::If"][1] == {
        "ProvisionedConcurrentExecutions": {"Ref": PARAMETER}
    }
    body = json.dumps(resources["RestAPI"]["Properties"]["Body"])
    targets = set(re.findall(r"lambda:path/2015-03-31/functions/\$\{([^}]+)\}/invocations", body))
    assert targets == {ALIAS, "BasicAuth.Arn"}  # every route through the alias; the authorizer as before
    assert ALIAS in resources  # cfn-lint does not look inside an OpenAPI body; this does
    invokers = [r["Properties"]["FunctionName"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"]
    assert {"Ref": ALIAS} in invokers, "API Gateway needs permission to invoke the alias itself"
