"""A Clickpost sandbox: the track-order API on loopback, scripted journeys, injectable faults."""

from trackwatch_cli.sandbox.demo import DEFAULT_CARRIERS, DemoShipment, demo_shipments
from trackwatch_cli.sandbox.faults import Fault, FaultBoard, FaultKind
from trackwatch_cli.sandbox.journey import Journey, JourneyFileError, load_journeys
from trackwatch_cli.sandbox.server import (
    DEFAULT_KEY,
    DEFAULT_USERNAME,
    Answer,
    SandboxRequest,
    SandboxServer,
)

__all__ = [
    "DEFAULT_CARRIERS",
    "DEFAULT_KEY",
    "DEFAULT_USERNAME",
    "Answer",
    "DemoShipment",
    "Fault",
    "FaultBoard",
    "FaultKind",
    "Journey",
    "JourneyFileError",
    "SandboxRequest",
    "SandboxServer",
    "demo_shipments",
    "load_journeys",
]
