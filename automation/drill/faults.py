"""A live drill's AWS FIS experiment: started from the template the stack declares, stopped on abort.

The interface is the stack output `faultInjection` (docs/fault-injection.md).
Start: StartExperiment with the drill's id as client token (a rerun of the same
drill starts nothing twice) and the stack's tag, without which the bootstrap's
drill role is refused (catalogue: fis.start-experiment-request-tag). Stop: the
experiment itself (StopExperiment), then the region's abort alarm set to ALARM
and a datapoint that keeps it there, so every experiment of the region stops
even if drctl's own call failed (catalogue: fis.stop-condition-alarm).

catalogue: fis.start-experiment-client-token
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from automation.aws.clients import AwsClients, reaching
from automation.errors import DrctlError
from components.naming import STACK_TAG


@dataclass
class FaultExperiment:
    clients: AwsClients
    templates: Mapping[str, Mapping[str, Any]]
    """Stack output `faultInjection`: per region, template ids and the abort alarm."""
    stack_tag: str
    template: str = "crossRegionConnectivity"
    region: str | None = None
    experiment_id: str | None = None

    @property
    def running(self) -> bool:
        return self.experiment_id is not None

    def start(self, region: str, drill_id: str) -> str:
        entry = self.templates.get(region) or {}
        template_id = entry.get(self.template)
        if not template_id:
            raise DrctlError(
                f"the stack output faultInjection has no {self.template} template in {region}",
                hint="deploy the stack with dr-platform:faultInjection: true (docs/fault-injection.md)",
            )
        with reaching(region):
            answer = self.clients.client("fis", region).start_experiment(
                experimentTemplateId=template_id, clientToken=drill_id, tags={STACK_TAG: self.stack_tag}
            )
        self.region, self.experiment_id = region, answer["experiment"]["id"]
        state = (answer["experiment"].get("state") or {}).get("status", "?")
        return f"FIS experiment {self.experiment_id} ({self.template} of {region}) started: {state}"

    def stop(self, why: str) -> str:
        """Stop the experiment and trip the abort alarm; each part is tried even when another fails."""
        region, experiment = self.region or "", self.experiment_id
        entry = self.templates.get(region) or {}
        done, problems = [], []
        try:
            with reaching(region):
                self.clients.client("fis", region).stop_experiment(id=experiment)
            done.append(f"experiment {experiment} stopped")
        except Exception as error:
            problems.append(f"StopExperiment failed ({error})")
        metric = entry.get("abortMetric") or {}
        try:
            cloudwatch = self.clients.client("cloudwatch", region)
            with reaching(region):
                cloudwatch.set_alarm_state(
                    AlarmName=entry["abortAlarm"], StateValue="ALARM", StateReason=f"drill aborted: {why}"[:1000]
                )
                cloudwatch.put_metric_data(
                    Namespace=metric["namespace"],
                    MetricData=[
                        {
                            "MetricName": metric["name"],
                            "Dimensions": [{"Name": k, "Value": v} for k, v in metric["dimensions"].items()],
                            "Value": 1,
                        }
                    ],
                )
            done.append(f"abort alarm {entry['abortAlarm']} set to ALARM")
        except Exception as error:
            problems.append(f"abort alarm not tripped ({error})")
        self.experiment_id = None
        if problems:
            # Never raised: the drill is ending anyway, and its report must say this loudly instead.
            problems.append(f"STOP IT BY HAND: aws fis stop-experiment --region {region} --id {experiment}")
        return f"{why}: " + "; ".join(done + problems)
