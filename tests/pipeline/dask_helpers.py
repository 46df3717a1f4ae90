"""What the Dask executor tests share: a listener that keeps each job's
result, and jobs for fake tasks that never read their images."""

from __future__ import annotations

from pathlib import Path

from nst_engine.settings import RenderSettings
from pipeline.jobs import RenderJob


class Collect:
    def __init__(self) -> None:
        self.records: dict[str, dict] = {}

    def on_worker(self, *args) -> None: ...
    def on_start(self, *args) -> None: ...
    def on_progress(self, *args) -> None: ...
    def on_idle(self) -> None: ...

    def on_result(self, job, record) -> None:
        self.records[job.job_id] = record


def fake_jobs(folder: Path, n: int = 3) -> list[RenderJob]:
    """job0, job1, …: their image is a file that only a real render would read."""
    image = folder / "a.jpg"
    image.write_bytes(b"not read by the fake task")
    return [
        RenderJob(job_id=f"job{i}", content=str(image), styles=(str(image),),
                  settings=RenderSettings(size=32, iterations=1), output_name=f"o{i}.png",
                  content_label="a", style_label="a")
        for i in range(n)
    ]


# For every test LocalCluster. A scheduler starts its HTTP server even with
# dashboard_address=None, on the fixed port 8787; two clusters open at once (one
# per xdist worker) then collide and Dask warns. Port 0 takes any free one.
FREE_DASHBOARD_PORT = "127.0.0.1:0"
