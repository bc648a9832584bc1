"""The drill's probe Job through a cluster's Kubernetes API: no kubectl, no kubeconfig, no client library.

Four REST calls (create the Job, read its status, list its pod, read each
container's log) and a delete, over HTTPS to the endpoint EKS's DescribeCluster
names, trusting the cluster's own CA, with the bearer token EKS accepts: a
presigned STS GetCallerIdentity URL bound to the cluster's name (catalogue:
eks.iam-token-is-presigned-get-caller-identity). The caller's IAM principal
needs an access entry on the cluster (`eksAdminPrincipalArns`; the drill
role in Pulumi.drill.yaml; catalogue: eks.creator-has-an-access-entry).

catalogue: eks.iam-token-is-presigned-get-caller-identity, eks.job-pods-labelled-and-orphaned-on-delete
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from automation.aws.clients import AwsClients, reaching
from automation.aws.waiting import Clock, Observation, wait_for
from automation.errors import DrctlError
from components.naming import cluster_name

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
TOKEN_EXPIRES_SECONDS = 60
REQUEST_TIMEOUT_SECONDS = 20

Transport = Callable[[str, str, Mapping[str, Any] | None], Any]
"""(method, path with query, JSON body) -> the decoded JSON answer, or the text of a log."""


def eks_token(sts_client: Any, cluster: str) -> str:
    """The bearer token of `aws eks get-token`: a presigned GetCallerIdentity naming the cluster in a header."""

    def bind_to_cluster(request: Any, **_: Any) -> None:
        request.headers[CLUSTER_ID_HEADER] = cluster

    sts_client.meta.events.register("before-sign.sts.GetCallerIdentity", bind_to_cluster)
    try:
        url = sts_client.generate_presigned_url(
            "get_caller_identity", Params={}, ExpiresIn=TOKEN_EXPIRES_SECONDS, HttpMethod="GET"
        )
    finally:
        sts_client.meta.events.unregister("before-sign.sts.GetCallerIdentity", bind_to_cluster)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


class KubernetesError(DrctlError):
    pass


def https_transport(endpoint: str, ca_data: str, token: Callable[[], str]) -> Transport:
    """JSON over HTTPS to one API server, trusting only its CA (base64 PEM, as DescribeCluster returns it)."""
    context = ssl.create_default_context(cadata=base64.b64decode(ca_data).decode())

    def send(method: str, path: str, body: Mapping[str, Any] | None) -> Any:
        request = urllib.request.Request(
            endpoint.rstrip("/") + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token()}", "Content-Type": "application/json", "Accept": "*/*"},
        )
        try:
            with urllib.request.urlopen(request, context=context, timeout=REQUEST_TIMEOUT_SECONDS) as answer:
                text = answer.read().decode()
        except urllib.error.HTTPError as error:
            raise KubernetesError(
                f"{method} {path}: HTTP {error.code}: {error.read().decode(errors='replace')[:300]}",
                hint="a 401/403 means the caller has no access entry on the cluster (eksAdminPrincipalArns)",
            ) from error
        return json.loads(text) if text.startswith("{") else text

    return send


@dataclass
class JobRun:
    """One Job, run to completion, its containers' logs read, then deleted."""

    send: Transport
    clock: Clock
    timeout_seconds: float = 420
    poll_seconds: float = 5

    def __call__(self, manifest: Mapping[str, Any]) -> dict[str, str]:
        namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
        jobs = f"/apis/batch/v1/namespaces/{namespace}/jobs"
        self.send("POST", jobs, manifest)
        try:
            wait_for(
                f"probe Job {namespace}/{name} to finish",
                lambda: self._finished(f"{jobs}/{name}"),
                timeout_seconds=self.timeout_seconds,
                interval_seconds=self.poll_seconds,
                clock=self.clock,
            )
            selector = urllib.parse.quote(f"job-name={name}")
            pods = self.send("GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}", None)
            items = pods.get("items") or []
            if not items:
                raise KubernetesError(f"probe Job {namespace}/{name} finished without a pod")
            pod = items[-1]["metadata"]["name"]
            containers = [c["name"] for c in manifest["spec"]["template"]["spec"]["containers"]]
            return {
                container: str(
                    self.send("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log?container={container}", None)
                )
                for container in containers
            }
        finally:
            # Background: the pod goes with the Job (the API's default for Jobs would orphan it).
            self.send("DELETE", f"{jobs}/{name}?propagationPolicy=Background", None)

    def _finished(self, path: str) -> Observation[bool]:
        status = self.send("GET", path, None).get("status") or {}
        done = bool(status.get("succeeded") or status.get("failed"))
        return Observation(done, bool(status.get("succeeded")), f"active {status.get('active', 0)}")


def eks_job_runner(clients: AwsClients, cfg: Any, clock: Clock) -> Callable[[str, Mapping[str, Any]], dict[str, str]]:
    """Runs a probe Job in a region's cluster of this stack (DescribeCluster for the endpoint and the CA)."""

    def run(region: str, manifest: Mapping[str, Any]) -> dict[str, str]:
        name = cluster_name(cfg, cfg.role_of(region))
        with reaching(region):
            cluster = clients.client("eks", region).describe_cluster(name=name)["cluster"]
        endpoint = cluster.get("endpoint")
        ca = (cluster.get("certificateAuthority") or {}).get("data")
        if not endpoint or not ca:
            raise KubernetesError(f"cluster {name} in {region} has no endpoint or CA yet ({cluster.get('status')})")
        sts = clients.client("sts", region)
        return JobRun(https_transport(endpoint, ca, lambda: eks_token(sts, name)), clock)(manifest)

    return run
