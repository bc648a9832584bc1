"""`drctl plan`: the transition config, the RTO/RPO budget, and the plan the CLI prints."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import pytest

from automation import plan as plan_module
from automation import prices
from automation.cli import main
from automation.costs import standby_region_cost
from automation.errors import DrctlError
from automation.evaluate import Evaluation
from automation.plan import build_plan, rpo_exposure, rto_budget, standby_profiles
from automation.timings import Op, latency
from automation.transitions import Transition, TransitionError, transition_config
from components.config import DrState, parse_config
from tests.conftest import STATE_OVERRIDES, evaluate_state, prod_config

STATE_AFTER = {"failed-over": "failed-over", "resyncing": "resyncing", "steady": "steady-after-failback"}


# --- transition_config ------------------------------------------------------------------


def test_failover_flips_the_active_region_and_nothing_about_the_databases():
    before = prod_config()
    after = transition_config(before, "failed-over")
    assert after["dr-platform:activeRegion"] == "us-west-2"
    assert after["dr-platform:drState"] == "failed-over"
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {"dr-platform:activeRegion", "dr-platform:drState"}


@pytest.mark.parametrize(("start", "target"), [("steady", "failed-over"), ("failed-over", "resyncing")])
def test_each_transition_writes_the_config_the_state_fixtures_describe(start, target):
    written = transition_config(prod_config(**STATE_OVERRIDES[start]), target)
    assert parse_config(written) == parse_config(prod_config(**STATE_OVERRIDES[STATE_AFTER[target]]))


def test_a_full_cycle_raises_both_generations_and_retains_the_old_writers():
    config = prod_config()
    for target in ("failed-over", "resyncing", "steady"):
        config = transition_config(config, target)
    cfg = parse_config(config)
    assert cfg.dr_state is DrState.STEADY and cfg.active_region == cfg.primary_region
    assert {r: (s.db_generation, s.db_retained_generations) for r, s in cfg.regions.items()} == {
        "primary": (2, (1,)),
        "dr": (2, (1,)),
    }
    assert parse_config(config) == parse_config(prod_config(**STATE_OVERRIDES["steady-after-failback"]))


def test_unprefixed_keys_are_accepted_and_the_result_is_prefixed():
    bare = {k.removeprefix("dr-platform:"): v for k, v in prod_config().items()}
    assert transition_config(bare, DrState.FAILED_OVER)["dr-platform:drState"] == "failed-over"


@pytest.mark.parametrize(
    ("start", "target"),
    [("steady", "resyncing"), ("steady", "steady"), ("failed-over", "steady"), ("resyncing", "failed-over")],
)
def test_transitions_the_state_machine_does_not_have_are_refused(start, target):
    with pytest.raises(TransitionError, match=f"no transition from {start} to {target}") as raised:
        transition_config(prod_config(**STATE_OVERRIDES[start]), target)
    assert "the only next state is" in raised.value.hint


def test_an_unknown_state_is_refused_with_the_allowed_ones():
    with pytest.raises(TransitionError, match="unknown DR state 'failover'; one of steady, failed-over, resyncing"):
        transition_config(prod_config(), "failover")


def test_the_input_config_is_not_modified():
    config = prod_config()
    snapshot = dict(config)
    transition_config(config, "failed-over")
    assert config == snapshot


# --- RTO budget and RPO exposure ---------------------------------------------------------


def test_the_failover_floor_is_detection_then_the_promotion_chain_and_under_eight_minutes():
    cfg = evaluate_state("steady").config
    budget = rto_budget(Transition.FAILOVER, prod_config(**STATE_OVERRIDES["steady"]))
    chain = (
        Op.HEALTH_CHECK_DETECTION,
        Op.READINESS_CHECKS,
        Op.PULUMI_CLI_CALL,
        Op.PULUMI_PREVIEW,
        Op.STACK_UPDATE_OVERHEAD,
        Op.RDS_PROMOTE_REPLICA,
        Op.VERIFY_SERVICES,
    )
    assert budget.typical_seconds == sum(latency(op, cfg) for op in chain)
    assert budget.worst_seconds == sum(latency(op, cfg, worst=True) for op in chain)
    assert "update_stack_in_dr_region" in budget.floor.critical_path
    assert "wait_until_dr_nodes_ready" not in budget.floor.critical_path
    assert budget.typical_seconds < 8 * 60
    every_wait = sum(latency(op, cfg) for step in budget.floor.steps for op in step.waits_on)
    assert budget.typical_seconds < every_wait


@pytest.mark.parametrize(
    ("transition", "state"),
    [
        (Transition.FAILOVER, "steady"),
        (Transition.FAILBACK_PREPARE, "failed-over"),
        (Transition.FAILBACK_SWITCH, "resyncing"),
    ],
)
def test_the_modelled_rto_schedules_the_built_runbook_and_meets_its_floor(transition, state):
    """Issue 16.2: the runbooks wait on nothing they do not depend on, so the ratio is 1 (target: at most 1.1)."""
    budget = rto_budget(transition, prod_config(**STATE_OVERRIDES[state]))
    assert budget.modelled_seconds == pytest.approx(budget.typical_seconds) and budget.ratio_to_floor <= 1.1
    report = budget.to_json(parse_config(prod_config(**STATE_OVERRIDES[state])))
    assert report["modelledSeconds"] == budget.modelled_seconds and report["ratioToFloor"] == 1.0


def test_the_plan_shows_the_modelled_rto_of_the_runbook_as_built(monkeypatch):
    """The modelled RTO comes from the runbook drctl builds, not from the graph: a runbook that waits for every
    step before the next is modelled over its floor."""
    built = plan_module.built_runbook

    def one_step_after_another(transition, raw_config, stack):
        runbook = built(transition, raw_config, stack)
        (group,) = runbook.items
        return replace(runbook, items=group.steps)

    monkeypatch.setattr(plan_module, "built_runbook", one_step_after_another)
    budget = rto_budget(Transition.FAILOVER, prod_config(**STATE_OVERRIDES["steady"]))
    assert budget.ratio_to_floor > 1.1 and budget.modelled_seconds > budget.typical_seconds


def test_detection_follows_the_health_check_config():
    cfg = parse_config(prod_config(healthCheckIntervalSeconds="30", healthCheckFailureThreshold="5"))
    assert latency(Op.HEALTH_CHECK_DETECTION, cfg) == 150
    assert latency(Op.DNS_CACHE_EXPIRY, cfg, worst=True) == cfg.dns_ttl_seconds


def test_rebuilding_replication_is_not_downtime():
    budget = rto_budget(Transition.FAILBACK_PREPARE, prod_config(**STATE_OVERRIDES["failed-over"]))
    assert not budget.interrupts_service
    assert budget.worst_seconds > budget.target_seconds


def test_standby_profiles_trade_running_cost_for_rto():
    options = {option.profile.value: option for option in standby_profiles(evaluate_state("steady").config)}
    rto = {name: option.rto.typical_seconds for name, option in options.items()}
    cost = {name: option.cost.monthly_usd for name, option in options.items()}
    # Pilot light waits for the replica's Multi-AZ conversion and for nodes; warm and hot hide the nodes behind
    # the promotion, so hot buys nothing more in the typical case (its worst case is where it helps).
    assert rto["pilot-light"] > rto["warm"] >= rto["hot"]
    assert cost["pilot-light"] < cost["warm"] < cost["hot"]
    assert options["warm"].current and not options["hot"].current


def test_an_unpriced_instance_class_is_listed_not_counted():
    cfg = replace(evaluate_state("steady").config, db_instance_class="db.x2g.16xlarge")
    cost = standby_region_cost(cfg)
    assert cost.unpriced == ["database replica db.x2g.16xlarge Multi-AZ"]
    assert cost.monthly_usd == round(sum(line.monthly_usd or 0 for line in cost.lines), 2) > 0


def test_the_standby_cost_and_the_drill_stacks_daily_cost_read_one_price_table(monkeypatch):
    """A price corrected in automation/prices.py moves both estimates; neither keeps a figure of its own."""
    cfg = evaluate_state("steady").config
    node_key = f"ec2:{cfg.node_instance_types[0]}"
    standby_before, daily_before = standby_region_cost(cfg).monthly_usd, prices.total(prices.daily_cost(cfg))
    doubled = replace(prices.PRICES[node_key], usd=2 * prices.PRICES[node_key].usd)
    monkeypatch.setitem(prices.PRICES, node_key, doubled)  # type: ignore[arg-type]
    nodes = cfg.standby_node_group.desired + prices.MONITORING_NODES_PER_REGION
    assert standby_region_cost(cfg).monthly_usd == pytest.approx(
        standby_before + nodes * doubled.usd / 2 * prices.HOURS_PER_MONTH, abs=0.05
    )
    daily_nodes = cfg.node_group_full.desired + cfg.node_group_standby.desired + 2 * prices.MONITORING_NODES_PER_REGION
    assert prices.total(prices.daily_cost(cfg)) == pytest.approx(
        daily_before + daily_nodes * doubled.usd / 2 * prices.HOURS_PER_DAY
    )


def test_every_price_says_where_and_when_it_was_read():
    for key, entry in prices.PRICES.items():
        assert entry.source.startswith("https://aws.amazon.com/") and "/pricing/" in entry.source, key
        assert entry.read_on >= prices.read_on() and entry.usd > 0 and entry.unit.startswith("per "), key


def test_rpo_exposure_is_honest_about_s3_rtc_and_bounds_the_replica_by_the_rpo():
    steady = evaluate_state("steady")
    exposures = {e.lag.mechanism: e for e in rpo_exposure(steady)}
    s3 = next(e for name, e in exposures.items() if name.startswith("S3"))
    assert s3.lag.bound_seconds == 15 * 60 and s3.within_target is False
    replica = next(e for name, e in exposures.items() if name.startswith("RDS cross-region"))
    assert replica.lag.bound_seconds == steady.config.rpo_seconds and replica.within_target is True
    cache = next(e for name, e in exposures.items() if name.startswith("ElastiCache"))
    assert cache.within_target is None


# --- the plan -------------------------------------------------------------------------------


@pytest.fixture
def cached_evaluations(monkeypatch):
    """Serve the suite's cached evaluations for configs equal to a known state's (else evaluate)."""
    known = {name: parse_config(prod_config(**overrides)) for name, overrides in STATE_OVERRIDES.items()}
    real = plan_module.evaluate_program

    def evaluate(raw_config, stack="prod"):
        cfg = parse_config(raw_config)
        name = next((name for name, known_cfg in known.items() if known_cfg == cfg), None)
        return evaluate_state(name) if name else real(raw_config, stack=stack)

    monkeypatch.setattr(plan_module, "evaluate_program", evaluate)


def test_failover_plan_targets_the_dr_region_and_leaves_the_primary_alone(cached_evaluations):
    plan = build_plan(prod_config())
    assert plan.transition is Transition.FAILOVER
    assert plan.failed_region == "us-east-1"
    steady = evaluate_state("steady")
    in_primary = {r.urn for r in steady.resources if r.custom and r.region == "us-east-1"}
    assert in_primary and not in_primary & set(plan.targets)
    assert set(plan.untouched()) <= in_primary | {r.urn for r in evaluate_state("failed-over").resources}
    assert all(c.urn not in plan.targets for c in plan.outside_targets())
    assert plan.changes.at_risk() == []


def test_cli_plan_json_has_the_change_set_scope_policies_and_budgets(cached_evaluations, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["drctl", "plan", "--to", "failed-over", "--json"])
    main()
    report = json.loads(capsys.readouterr().out)
    assert (report["transition"], report["from"], report["to"]) == ("failover", "steady", "failed-over")
    promoted = [
        c
        for c in report["changes"]["resources"]
        if c["type"] == "aws:rds/instance:Instance" and c["region"] == "us-west-2"
    ]
    assert promoted and promoted[0]["operation"] == "update" and "replicateSourceDb" in promoted[0]["changed"]
    assert report["atRisk"] == []
    assert report["update"]["targeted"] and report["update"]["failedRegion"] == "us-east-1"
    assert report["policies"]["violations"] == []
    rto = report["rto"]
    assert rto["targetSeconds"] == 900 and rto["withinTarget"]["typical"] is True
    assert rto["floor"]["leadIn"][0] == "route53.health-check-detection"
    assert rto["floor"]["criticalPath"][-1] == "verify_dr_serving"
    assert rto["modelledSeconds"] == rto["typicalSeconds"] and rto["ratioToFloor"] == 1.0
    profiles = {option["profile"]: option for option in report["standbyProfiles"]["options"]}
    assert set(profiles) == {"pilot-light", "warm", "hot"} and profiles["warm"]["current"] is True
    assert report["standbyProfiles"]["prices"]["readOn"]
    assert any("RPO target" in w and "S3" in w for w in report["warnings"])


def test_what_aws_would_refuse_in_the_target_state_blocks_the_plan(cached_evaluations, monkeypatch, capsys):
    """The plan runs the mock-level AWS rules on the target: a public endpoint without an allow-list blocks it.

    catalogue: eks.public-endpoint-open-by-default
    """
    real_rules = plan_module.check_declared

    def open_endpoints(evaluation):
        opened = [
            replace(r, inputs={**r.inputs, "vpcConfig": {**r.inputs["vpcConfig"], "publicAccessCidrs": ["0.0.0.0/0"]}})
            if r.type == "aws:eks/cluster:Cluster"
            else r
            for r in evaluation.resources
        ]
        return real_rules(Evaluation(evaluation.config, opened))

    monkeypatch.setattr(plan_module, "check_declared", open_endpoints)
    monkeypatch.setattr(sys, "argv", ["drctl", "plan", "--to", "failed-over", "--json"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["blocked"] is True
    assert {r["behaviour"] for r in report["awsRefusals"]} == {"eks.public-endpoint-open-by-default"}
    assert len(report["awsRefusals"]) == 2  # both clusters
    assert "AWS would refuse 2 declaration(s)" in captured.err


def test_the_programs_own_target_states_are_not_blocked(cached_evaluations):
    plan = build_plan(prod_config())
    assert plan.refusals == [] and not plan.blocked


def test_plan_without_to_goes_to_the_next_state(cached_evaluations):
    plan = build_plan(prod_config(**STATE_OVERRIDES["failed-over"]))
    assert plan.transition is Transition.FAILBACK_PREPARE and plan.targets is None
    assert plan.untouched() == []


def test_cli_plan_refuses_an_illegal_transition_and_a_missing_stack(monkeypatch, capsys):
    for args, code in ((["plan", "--to", "resyncing"], 1), (["plan", "--stack", "staging"], 2)):
        monkeypatch.setattr(sys, "argv", ["drctl", *args])
        with pytest.raises(SystemExit) as exit_:
            main()
        assert exit_.value.code == code
    err = capsys.readouterr().err
    assert "no transition from steady to resyncing" in err
    assert "Pulumi.staging.yaml: no such stack file" in err and "Pulumi.prod.yaml (stack prod)" in err


def test_drctl_errors_from_transitions_are_drctl_errors():
    assert issubclass(TransitionError, DrctlError)
