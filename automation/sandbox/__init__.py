"""The offline sandbox: moto in both regions, the program's declared state applied to it, a data plane,
a latency model and fault injection, so drills rehearse the real runbooks without AWS (see docs/sandbox.md)."""

from automation.sandbox.clock import LatencyClock, Mark
from automation.sandbox.sandbox import Sandbox, Scenario, SimulatedCrash, load_balancer_dimension
from automation.sandbox.server import MotoSandboxServer
from automation.sandbox.simulated import SIMULATED

__all__ = [
    "SIMULATED",
    "LatencyClock",
    "Mark",
    "MotoSandboxServer",
    "Sandbox",
    "Scenario",
    "SimulatedCrash",
    "load_balancer_dimension",
]
