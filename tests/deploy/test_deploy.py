"""What can be checked about a deployment without AWS: stages, policies, the template, the tables.

The packaged templates come from the same command as ``make package`` (see
test_package.py); the policy files are what ``chalice deploy`` attaches.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from tests.deploy.test_package import build_package
from tools import create_tables

ROOT = Path(__file__).resolve().parents[2]
CHALICE = ROOT / ".chalice"
CONFIG = json.loads((CHALICE / "config.json").read_text())
STAGES = ("dev", "prod")
API_GATEWAY_TIMEOUT_SECONDS = 29
# Actions IAM cannot scope to a resource; nothing else may be granted on "*".
STAR_ONLY_ACTIONS = {
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
ENI_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
}
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
# The smallest DocumentDB instance classes (db.t3.medium, db.t4g.medium) accept 500 connections.
DOCDB_MAX_CONNECTIONS = 500
# Per container: the pool, plus the one monitoring connection of pymongo's poll
# mode on a direct connection (chalicelib/docdb/client.py).
MONITOR_CONNECTIONS = 1


def stage_config(stage: str) -> dict[str, Any]:
    return CONFIG["stages"][stage]


def function_setting(stage: str, function: str, key: str) -> Any:
    """A Chalice setting as Chalice resolves it: the function's override, else the stage's, else the top level."""
    for scope in (stage_config(stage).get("lambda_functions", {}).get(function, {}), stage_config(stage), CONFIG):
        if scope.get(key) is not None:
            return scope[key]
    return None


def policy_file(stage: str, function: str) -> dict[str, Any]:
    name = function_setting(stage, function, "iam_policy_file") or f"policy-{stage}.json"
    return json.loads((CHALICE / name).read_text())


def listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in listify(s["Action"])}


def resources_for(statements: list[dict[str, Any]], prefix: str) -> set[str]:
    return {
        r for s in statements for r in listify(s["Resource"]) if any(a.startswith(prefix) for a in listify(s["Action"]))
    }


def secret_arn(name: str) -> str:
    """The ARN Secrets Manager gives a secret called ``name``: a random six-character suffix."""
    return f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{name}-AbC123"


def iam_matches(pattern: str, arn: str) -> bool:
    """IAM's ARN wildcards: ``*`` any run of characters, ``?`` any one."""
    return fnmatch.fnmatchcase(arn, pattern)


# --- a little CloudFormation evaluator, for comparing template and files ----


def resolve(node: Any, template: dict[str, Any], stage: str) -> Any:
    """``node`` with Ref, Fn::Sub, Fn::If, Fn::GetAtt (table Arn) and Fn::FindInMap evaluated.

    Region and account become ``*``, as the policy files write them.
    """
    params = {"AWS::Partition": "aws", "AWS::Region": "*", "AWS::AccountId": "*", "ChaliceStage": stage}
    if isinstance(node, list):
        items = [resolve(item, template, stage) for item in node]
        return [item for item in items if item is not _NO_VALUE]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"}:
        name = node["Ref"]
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in params:
            return params[name]
        return resolve(template["Resources"][name]["Properties"]["TableName"], template, stage)
    if set(node) == {"Fn::Sub"}:
        return re.sub(r"\$\{([^}]+)\}", lambda m: params[m.group(1)], node["Fn::Sub"])
    if set(node) == {"Fn::If"}:
        condition, then, otherwise = node["Fn::If"]
        return resolve(then if condition_holds(template, condition, stage) else otherwise, template, stage)
    if set(node) == {"Fn::GetAtt"}:
        name, attribute = node["Fn::GetAtt"]
        assert attribute == "Arn" and template["Resources"][name]["Type"] == "AWS::DynamoDB::Table"
        return f"arn:aws:dynamodb:*:*:table/{resolve({'Ref': name}, template, stage)}"
    if set(node) == {"Fn::FindInMap"}:
        mapping, key, value = (resolve(part, template, stage) for part in node["Fn::FindInMap"])
        return template["Mappings"][mapping][key][value]
    return {k: resolve(v, template, stage) for k, v in node.items()}


_NO_VALUE = object()


def condition_holds(template: dict[str, Any], name: str, stage: str) -> bool:
    (left, right) = template["Conditions"][name]["Fn::Equals"]
    return resolve(left, template, stage) == resolve(right, template, stage)


def role_statements(template: dict[str, Any], function: str, stage: str) -> list[dict[str, Any]]:
    role = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = template["Resources"][role]["Properties"]["Policies"]
    return [s for p in resolve(policies, template, stage) for s in p["PolicyDocument"]["Statement"]]


def normalized(statements: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (s.get("Sid", ""), s["Effect"], tuple(sorted(listify(s["Action"]))), tuple(sorted(listify(s["Resource"]))))
        for s in statements
    )


# --- fixtures ------------------------------------------------------------------

# Chalice's function names and their logical ids in the template.
FUNCTIONS = {"api_handler": "APIHandler", "basic_auth": "BasicAuth"}
LOG_GROUPS = {"APIHandler": "ApiHandlerLogGroup", "BasicAuth": "BasicAuthLogGroup"}


@pytest.fixture(scope="session")
def templates() -> dict[str, dict[str, Any]]:
    return {stage: json.loads((build_package(stage) / "sam.json").read_text()) for stage in STAGES}


def all_policies(templates: dict[str, dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Every policy the project can attach: the files and the packaged roles."""
    found = []
    for stage in STAGES:
        for function, logical in FUNCTIONS.items():
            found.append((f"{stage} {function} file", policy_file(stage, function)["Statement"]))
            found.append((f"{stage} {logical} template", role_statements(templates[stage], logical, stage)))
    return found


# --- stages ----------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_stage_uses_hand_written_policies_for_each_function(stage: str) -> None:
    config = stage_config(stage)
    assert config["autogen_policy"] is False
    handler_policy = function_setting(stage, "api_handler", "iam_policy_file")
    authorizer_policy = function_setting(stage, "basic_auth", "iam_policy_file")
    assert handler_policy == f"policy-{stage}.json"
    assert authorizer_policy != handler_policy, "the authorizer needs its own, narrower policy"
    assert (CHALICE / handler_policy).is_file() and (CHALICE / authorizer_policy).is_file()


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_functions_finish_before_api_gateway_gives_up(stage: str, function: str) -> None:
    timeout = function_setting(stage, function, "lambda_timeout")
    assert timeout is not None and timeout < API_GATEWAY_TIMEOUT_SECONDS
    assert function_setting(stage, function, "lambda_memory_size") >= 256


@pytest.mark.parametrize("stage", STAGES)
def test_reserved_concurrency_keeps_documentdb_under_its_connection_limit(stage: str) -> None:
    reserved = function_setting(stage, "api_handler", "reserved_concurrency")
    pool = int(stage_config(stage)["environment_variables"]["DOCDB_POOL_SIZE"])
    assert reserved is not None, "without a cap, Lambda's scaling can exhaust DocumentDB's connections"
    # x2: after a deploy, the old version's containers can hold their connections a while longer.
    assert reserved * (pool + MONITOR_CONNECTIONS) * 2 <= DOCDB_MAX_CONNECTIONS
    assert function_setting(stage, "basic_auth", "subnet_ids") is None, "the authorizer never opens a connection"


def test_prod_runs_the_api_handler_in_a_vpc_and_the_authorizer_outside() -> None:
    assert function_setting("prod", "api_handler", "subnet_ids")
    assert function_setting("prod", "api_handler", "security_group_ids")
    assert function_setting("prod", "basic_auth", "subnet_ids") is None
    assert function_setting("prod", "basic_auth", "security_group_ids") is None
    assert function_setting("prod", "api_handler", "xray") is True
    assert function_setting("prod", "basic_auth", "xray") is True


# --- policies ----------------------------------------------------------------------


def wildcard_problems(statements: list[dict[str, Any]]) -> list[str]:
    """Statements that allow more than they name: wildcard actions, Not*, Deny mixed in."""
    problems = []
    for statement in statements:
        if statement["Effect"] != "Allow" or {"NotAction", "NotResource", "NotPrincipal"} & set(statement):
            problems.append(f"{statement.get('Sid')}: only plain Allow statements are expected")
        problems += [f"wildcard action {a}" for a in listify(statement["Action"]) if "*" in a or "?" in a]
    return problems


def star_problems(statements: list[dict[str, Any]]) -> list[str]:
    """Grants on ``*`` that IAM could scope, and data-service grants not on named ARNs."""
    problems = []
    for statement in statements:
        if "*" in listify(statement["Resource"]):
            problems += [f"{a} on *" for a in listify(statement["Action"]) if a not in STAR_ONLY_ACTIONS]
    for service in ("dynamodb:", "secretsmanager:"):
        for resource in resources_for(statements, service):
            name = resource.split(":", 5)[-1]  # the part after region and account
            if not resource.startswith("arn:") or "*" in name:
                problems.append(f"{service} on {resource}")
    return problems


def test_policies_grant_no_wildcard_action(templates: dict[str, dict[str, Any]]) -> None:
    for where, statements in all_policies(templates):
        assert wildcard_problems(statements) == [], where


def test_policies_grant_nothing_on_star_that_could_be_narrowed(templates: dict[str, dict[str, Any]]) -> None:
    for where, statements in all_policies(templates):
        assert star_problems(statements) == [], where


def test_policy_checks_catch_wildcards_and_star() -> None:
    broken = copy.deepcopy(policy_file("prod", "api_handler")["Statement"])
    tables = next(s for s in broken if s["Sid"] == "Tables")
    tables["Action"] = "dynamodb:*"
    assert wildcard_problems(broken) == ["wildcard action dynamodb:*"]
    tables["Action"], tables["Resource"] = "dynamodb:GetItem", "*"
    assert star_problems(broken) == ["dynamodb:GetItem on *", "dynamodb: on *"]
    tables["Resource"] = "arn:aws:dynamodb:*:*:table/*"
    assert star_problems(broken) == ["dynamodb: on arn:aws:dynamodb:*:*:table/*"]


def aws_calls() -> set[str]:
    """The DynamoDB and Secrets Manager operations chalicelib calls, as IAM actions."""
    session = botocore.session.get_session()
    by_method = {}
    for service in ("dynamodb", "secretsmanager"):
        model = session.get_service_model(service)
        by_method.update({xform_name(op): f"{model.signing_name}:{op}" for op in model.operation_names})
    called = set()
    for source in (ROOT / "chalicelib").rglob("*.py"):
        text = source.read_text()
        called |= {by_method[m] for m in re.findall(r"_client\.(\w+)\(", text) if m in by_method}
        # IAM has no TransactWriteItems action: each entry needs its own (PutItem for a Put, ...).
        kinds = re.findall(r'\{\s*"(Put|Delete|Update|ConditionCheck)":\s*\{', text)
        called |= {TRANSACT_ACTIONS[kind] for kind in kinds}
    called.discard("dynamodb:TransactWriteItems")
    return called


TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Delete": "dynamodb:DeleteItem",
    "Update": "dynamodb:UpdateItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


@pytest.mark.parametrize("stage", STAGES)
def test_api_handler_policy_grants_exactly_what_the_code_calls(stage: str) -> None:
    statements = policy_file(stage, "api_handler")["Statement"]
    called = aws_calls()
    assert {"dynamodb:GetItem", "secretsmanager:GetSecretValue"} <= called  # the scan found the stores
    granted = {a for a in actions(statements) if a.startswith(("dynamodb:", "secretsmanager:"))}
    assert granted == called

    env = stage_config(stage)["environment_variables"]
    tables = resources_for(statements, "dynamodb:")
    variables = ("LINKS_TABLE", "MOVIES_TABLE", "IDEMPOTENCY_TABLE")
    assert tables == {f"arn:aws:dynamodb:*:*:table/{env[v]}" for v in variables}
    # The idempotency records are only ever put (in the item's transaction): nothing else on that table.
    records = f"arn:aws:dynamodb:*:*:table/{env['IDEMPOTENCY_TABLE']}"
    assert actions([s for s in statements if records in listify(s["Resource"])]) == {"dynamodb:PutItem"}
    secrets = resources_for(statements, "secretsmanager:")
    for variable in ("DOCDB_SECRET_ID", "API_USERS_SECRET_ID"):
        assert any(iam_matches(pattern, secret_arn(env[variable])) for pattern in secrets), variable
    assert len(secrets) == 2


@pytest.mark.parametrize("stage", STAGES)
def test_authorizer_policy_reads_only_the_users_secret(stage: str) -> None:
    statements = policy_file(stage, "basic_auth")["Statement"]
    env = stage_config(stage)["environment_variables"]
    assert not [a for a in actions(statements) if a.startswith(("dynamodb:", "ec2:"))]
    (secret,) = resources_for(statements, "secretsmanager:")
    assert iam_matches(secret, secret_arn(env["API_USERS_SECRET_ID"]))
    assert not iam_matches(secret, secret_arn(env["DOCDB_SECRET_ID"]))


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_policy_has_vpc_and_xray_actions_only_when_the_function_uses_them(stage: str, function: str) -> None:
    granted = actions(policy_file(stage, function)["Statement"])
    in_vpc = bool(function_setting(stage, function, "subnet_ids"))
    assert (granted >= ENI_ACTIONS) == in_vpc and bool(granted & ENI_ACTIONS) == in_vpc
    traced = bool(function_setting(stage, function, "xray"))
    assert (granted >= XRAY_ACTIONS) == traced and bool(granted & XRAY_ACTIONS) == traced
    log_groups = resources_for(policy_file(stage, function)["Statement"], "logs:")
    assert log_groups == {f"arn:aws:logs:*:*:log-group:/aws/lambda/docdb-rest-{stage}-{function}:*"}


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_template_policies_are_the_policy_files_pinned_to_the_stack(
    templates: dict[str, dict[str, Any]], stage: str, function: str
) -> None:
    in_template = role_statements(templates[stage], FUNCTIONS[function], stage)
    assert normalized(in_template) == normalized(policy_file(stage, function)["Statement"])


# --- the packaged template ----------------------------------------------------------


def test_cfn_lint_accepts_the_packaged_templates() -> None:
    paths = [str(build_package(stage) / "sam.json") for stage in STAGES]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--regions", "us-east-1", "eu-west-1", "--", *paths],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_rejects_a_broken_template(tmp_path: Path, templates: dict[str, dict[str, Any]]) -> None:
    broken = copy.deepcopy(templates["prod"])
    broken["Resources"]["LinksTable"]["Properties"]["KeySchema"][0]["AttributeName"] = "not_defined"
    statements = broken["Resources"]["ApiHandlerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    statements[1]["Resource"][0] = {"Fn::GetAtt": ["Nowhere", "Arn"]}
    path = tmp_path / "sam.json"
    path.write_text(json.dumps(broken))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--regions", "us-east-1", "--", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Nowhere" in result.stdout and "not_defined" in result.stdout


def test_prod_template_puts_only_the_api_handler_in_the_vpc(templates: dict[str, dict[str, Any]]) -> None:
    resources = templates["prod"]["Resources"]
    vpc = resources["APIHandler"]["Properties"]["VpcConfig"]
    assert vpc["SubnetIds"] == function_setting("prod", "api_handler", "subnet_ids")
    assert vpc["SecurityGroupIds"] == function_setting("prod", "api_handler", "security_group_ids")
    assert "VpcConfig" not in resources["BasicAuth"]["Properties"]
    assert "VpcConfig" not in templates["dev"]["Resources"]["APIHandler"]["Properties"]


@pytest.mark.parametrize("stage", STAGES)
def test_template_creates_the_tables_and_wires_them_into_the_function(
    templates: dict[str, dict[str, Any]], stage: str
) -> None:
    template = templates[stage]
    env = stage_config(stage)["environment_variables"]
    function_env = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    for logical, variable, key in (("LinksTable", "LINKS_TABLE", "link_id"), ("MoviesTable", "MOVIES_TABLE", "name"),
                                   ("IdempotencyTable", "IDEMPOTENCY_TABLE", "id")):
        table = template["Resources"][logical]
        properties = table["Properties"]
        assert table["Type"] == "AWS::DynamoDB::Table"
        assert table["DeletionPolicy"] == "Retain"
        assert properties["BillingMode"] == "PAY_PER_REQUEST"
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert properties["SSESpecification"] == {"SSEEnabled": True}
        assert properties["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
        assert properties["AttributeDefinitions"] == [{"AttributeName": key, "AttributeType": "S"}]
        # The same names as `chalice deploy` uses, so policy-<stage>.json fits both paths.
        assert resolve(properties["TableName"], template, stage) == env[variable]
        assert function_env[variable] == {"Ref": logical}
    assert resolve(template["Resources"]["LinksTable"]["Properties"]["DeletionProtectionEnabled"], template, stage) is (
        stage == "prod"
    )
    assert template["Resources"]["IdempotencyTable"]["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": "expires_at", "Enabled": True
    }


@pytest.mark.parametrize("stage", STAGES)
def test_template_names_functions_and_log_groups_as_the_policies_expect(
    templates: dict[str, dict[str, Any]], stage: str
) -> None:
    template = templates[stage]
    assert template["Parameters"]["ChaliceStage"]["Default"] == stage
    for function, logical in FUNCTIONS.items():
        properties = template["Resources"][logical]["Properties"]
        assert resolve(properties["FunctionName"], template, stage) == f"docdb-rest-{stage}-{function}"
        log_group = template["Resources"][LOG_GROUPS[logical]]["Properties"]
        assert log_group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{logical}}}"}
        assert properties["Tracing"] == ("Active" if stage == "prod" else "PassThrough")
        assert properties["Timeout"] < API_GATEWAY_TIMEOUT_SECONDS


def gateway_responses(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["x-amazon-apigateway-gateway-responses"]


def test_prod_template_answers_401_with_a_basic_challenge(templates: dict[str, dict[str, Any]]) -> None:
    unauthorized = gateway_responses(templates["prod"])["UNAUTHORIZED"]
    assert unauthorized["statusCode"] == "401"  # a string, as API Gateway documents it
    challenge = unauthorized["responseParameters"]["gatewayresponse.header.WWW-Authenticate"]
    assert re.fullmatch(r"'Basic realm=\"[^\"]+\"(, charset=\"UTF-8\")?'", challenge), challenge


@pytest.mark.parametrize("stage", STAGES)
def test_template_gateway_errors_carry_cors_and_authorizer_failures_are_503(
    templates: dict[str, dict[str, Any]], stage: str
) -> None:
    responses = gateway_responses(templates[stage])
    assert {"DEFAULT_4XX", "DEFAULT_5XX", "UNAUTHORIZED"} <= set(responses)
    for name, response in responses.items():
        assert response["responseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'", name
    for name in ("AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR"):
        assert responses[name]["statusCode"] == "503"
        assert re.fullmatch(r"'\d+'", responses[name]["responseParameters"]["gatewayresponse.header.Retry-After"])


@pytest.mark.parametrize("stage", STAGES)
def test_template_throttles_the_stage_within_the_reserved_concurrency(
    templates: dict[str, dict[str, Any]], stage: str
) -> None:
    template = templates[stage]
    (settings,) = resolve(template["Resources"]["RestAPI"]["Properties"]["MethodSettings"], template, stage)
    assert settings["ResourcePath"] == "/*" and settings["HttpMethod"] == "*"
    assert settings["ThrottlingRateLimit"] > 0
    # A burst beyond the reserved concurrency would reach Lambda and be throttled there, as a 5xx.
    assert 0 < settings["ThrottlingBurstLimit"] <= function_setting(stage, "api_handler", "reserved_concurrency")
    assert template["Resources"]["APIHandler"]["Properties"]["ReservedConcurrentExecutions"] == function_setting(
        stage, "api_handler", "reserved_concurrency"
    )


# --- tools/create_tables.py against moto ---------------------------------------------


def describe(stack: Any, name: str) -> tuple[dict[str, Any], str]:
    table = stack.dynamodb.describe_table(TableName=name)["Table"]
    backups = stack.dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    return table, backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]


def test_create_tables_creates_on_demand_encrypted_tables_with_pitr(
    stack: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    names = {"LINKS_TABLE": f"links-{uuid.uuid4().hex[:8]}", "MOVIES_TABLE": f"movies-{uuid.uuid4().hex[:8]}",
             "IDEMPOTENCY_TABLE": f"idempotency-{uuid.uuid4().hex[:8]}"}
    for variable, name in names.items():
        monkeypatch.setenv(variable, name)
    create_tables.main([])
    for variable, key in create_tables.TABLES:
        table, pitr = describe(stack, names[variable])
        assert table["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert table["SSEDescription"]["Status"] == "ENABLED" and table["SSEDescription"]["SSEType"] == "KMS"
        assert pitr == "ENABLED"
    ttl = stack.dynamodb.describe_time_to_live(TableName=names["IDEMPOTENCY_TABLE"])["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == "expires_at"
    assert capsys.readouterr().out.count("created") == 3

    create_tables.main([])  # again: nothing to do
    assert capsys.readouterr().out.count("already as required") == 3


def test_create_tables_brings_an_existing_table_up_to_the_settings(stack: Any) -> None:
    name = f"links-{uuid.uuid4().hex[:8]}"
    stack.dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "link_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "link_id", "AttributeType": "S"}],
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
        SSESpecification={"Enabled": True, "SSEType": "KMS"},
    )
    done = create_tables.ensure_table(stack.dynamodb, name, "link_id", deletion_protection=False)
    assert done == ["switched to on-demand billing", "point-in-time recovery enabled"]
    table, pitr = describe(stack, name)
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST" and pitr == "ENABLED"
    assert create_tables.ensure_table(stack.dynamodb, name, "link_id", deletion_protection=False) == []


def test_create_tables_refuses_a_table_with_another_key(stack: Any) -> None:
    name = f"movies-{uuid.uuid4().hex[:8]}"
    stack.dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(SystemExit, match="partition key 'name'"):
        create_tables.ensure_table(stack.dynamodb, name, "name", deletion_protection=False)


@pytest.mark.parametrize("stage", STAGES)
def test_create_tables_takes_the_stage_names_from_the_chalice_config(stage: str) -> None:
    env = stage_config(stage)["environment_variables"]
    assert create_tables.table_names(stage) == {
        "link_id": env["LINKS_TABLE"], "name": env["MOVIES_TABLE"], "id": env["IDEMPOTENCY_TABLE"]
    }
