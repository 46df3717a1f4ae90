"""What a render was asked to do (`RenderOptions`, from the command line), and
where its workers run: the flags against the manifest's `run:` block. Shared by
`nst render` and `nst plan`, which must agree on it."""

from __future__ import annotations

from dataclasses import dataclass

from .devices import workers_for
from .manifest import Manifest


@dataclass(frozen=True)
class RenderOptions:
    devices: tuple[str, ...] | None = None
    cluster: str | None = None
    force: bool = False
    only: str | None = None
    quiet: bool = False
    wait: bool = False
    job_timeout: float | None = None
    grace_seconds: float = 30.0
    live: bool | None = None  # None: rich bars when stderr is a terminal


def cluster_address(manifest: Manifest, options: RenderOptions) -> str | None:
    """The Dask scheduler to run on, if any: --cluster, else the manifest's
    run.cluster, unless --devices asks for this machine (a trial run at home)."""
    if options.cluster is not None:
        return options.cluster
    return None if options.devices is not None else manifest.run.cluster


def requested_devices(manifest: Manifest, options: RenderOptions) -> tuple[tuple[str, ...] | None, str]:
    """The devices asked for (None: detect), and how errors name where they were
    asked for: the --devices flag wins over the manifest's `run.devices`."""
    if options.devices:
        return options.devices, "--devices"
    return manifest.run.devices, manifest.devices_source()


def planned_devices(manifest: Manifest, options: RenderOptions, jobs: int) -> tuple[str, ...] | None:
    """The workers a run would start, where the plan can tell without touching
    CUDA: devices asked for by name (not a cluster, not detection, not a bare
    `cuda`), no more than there are jobs, as the run caps them."""
    devices, _ = requested_devices(manifest, options)
    if cluster_address(manifest, options) is not None or devices is None or "cuda" in devices:
        return None
    return workers_for(devices, jobs)


def planned_device_types(manifest: Manifest, options: RenderOptions) -> frozenset[str]:
    """"cpu" and/or "cuda": where this run's workers would be, as far as the
    plan can tell without touching CUDA. Unknown (a cluster, or devices left to
    detection) gives both."""
    devices, _ = requested_devices(manifest, options)  # parsed already: ("cuda:0", "cpu", ...)
    if cluster_address(manifest, options) is not None or devices is None:
        return frozenset({"cpu", "cuda"})
    return frozenset("cuda" if device.startswith("cuda") else "cpu" for device in devices)
