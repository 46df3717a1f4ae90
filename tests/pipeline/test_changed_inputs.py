"""An input file replaced between planning and rendering (`cp other.jpg
photos/cat.jpg` while the night runs) fails its own job, and only that one:
its render would otherwise be saved under the old bytes' job id, and count as
done for good once the old file came back. The next run plans the new bytes and
renders them under their own id.

The replacement lands deterministically between the two moments: the manifest
is loaded (planned, ids hashed) first, the file is overwritten, and only then
does `execute` hand the planned jobs to real workers.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from dask_helpers import FREE_DASHBOARD_PORT
from process_helpers import output_pngs, results, write_manifest

from pipeline import worker
from pipeline.cluster import _input_bytes
from pipeline.jobs import WorkerOptions
from pipeline.manifest import load_manifest
from pipeline.outputs import output_is_complete
from pipeline.run import RenderOptions, execute

SETTINGS = {"size": 32, "iterations": 2}
LOCAL = RenderOptions(devices=("cpu",), live=False, quiet=True)


def _reason(path: Path) -> str:
    return f"{path} changed since this run planned it; the next run renders it with its new contents"


def _by_content(out: Path) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for record in results(out):
        found.setdefault(record["output"].split("--")[0], []).append(record)
    return found


def _replace_then_render(folder: Path, options: RenderOptions) -> tuple[str, str]:
    """Plan chelsea and neuschwanstein × starry_night, replace chelsea.jpg, render
    the plan, then render again; checks both runs. (stale id, new id) of chelsea's job."""
    manifest = write_manifest(folder, ["chelsea", "neuschwanstein"], ["starry_night"], settings=SETTINGS)
    out, photo = folder / "out", folder / "images" / "content" / "chelsea.jpg"
    original = photo.read_bytes()
    planned = load_manifest(manifest)
    (stale,) = (job for job in planned.jobs if job.content_label == "chelsea")
    shutil.copyfile(folder / "images" / "content" / "machu_picchu.jpg", photo)  # not in the gallery

    assert execute(planned, options) == 1  # a job failed: cron hears of it
    records = _by_content(out)
    assert [(r["job_id"], r["status"], r["error"]) for r in records["chelsea"]] == [
        (stale.job_id, "failed", _reason(photo))]
    assert [r["status"] for r in records["neuschwanstein"]] == ["done"]  # the night went on
    assert not [p for p in output_pngs(out) if stale.job_id in p.name]
    assert not output_is_complete(out, stale)

    replanned = load_manifest(manifest)
    (fresh,) = (job for job in replanned.jobs if job.content_label == "chelsea")
    assert fresh.job_id != stale.job_id
    assert execute(replanned, options) == 0
    assert _by_content(out)["chelsea"][-1]["status"] == "done"
    assert [p.name for p in output_pngs(out) if "chelsea" in p.name] == [fresh.output_name]

    photo.write_bytes(original)  # the old photo comes back: its job is to do, not done
    (back,) = (job for job in load_manifest(manifest).jobs if job.content_label == "chelsea")
    assert back.job_id == stale.job_id and not output_is_complete(out, back)
    return stale.job_id, fresh.job_id


@pytest.mark.slow
def test_a_photo_replaced_after_planning_fails_its_job_in_a_worker_process(gallery_dir):
    _replace_then_render(gallery_dir.parent, LOCAL)


@pytest.mark.slow
def test_on_a_dask_cluster_the_shipped_bytes_are_checked_too(gallery_dir):
    distributed = pytest.importorskip("distributed")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the cluster renders in this process; a Dask worker has one thread
    try:
        with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                                      dashboard_address=FREE_DASHBOARD_PORT) as cluster:
            _replace_then_render(gallery_dir.parent,
                                 RenderOptions(cluster=cluster.scheduler_address, live=False, quiet=True))
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return worker.build_engine("cpu", WorkerOptions(str(tmp_path_factory.mktemp("engine")), cache_dir=None))


@pytest.mark.parametrize("shipped", [False, True], ids=["read-here", "shipped-to-dask"])
@pytest.mark.parametrize("which", ["style", "init"])
def test_a_replaced_style_or_init_image_fails_its_job(gallery_dir, engine, which, shipped):
    folder = gallery_dir.parent
    init = gallery_dir / "content" / "neuschwanstein.jpg"
    manifest = write_manifest(folder, ["chelsea"], ["starry_night"], settings={**SETTINGS, "init": str(init)})
    (job,) = load_manifest(manifest).jobs
    changed = {"style": gallery_dir / "style" / "starry_night.jpg", "init": init}[which]
    shutil.copyfile(gallery_dir / "style" / "night_cafe.jpg", changed)
    # What a Dask task carries: the bytes read when it was submitted, after the change.
    inputs = _input_bytes([job]) if shipped else None
    options = WorkerOptions(str(folder / "out"), checkpoint_every=0)
    (record,) = worker.render_task(engine, [job], options, inputs=inputs)
    assert (record["status"], record["error"]) == ("failed", _reason(changed))
    assert "png" not in record


def test_a_job_with_unchanged_files_renders_and_one_without_digests_is_not_checked(gallery_dir, engine):
    folder = gallery_dir.parent
    manifest = write_manifest(folder, ["chelsea"], ["starry_night"], settings=SETTINGS)
    (job,) = load_manifest(manifest).jobs
    assert [Path(path).name for path, _ in job.digests] == ["chelsea.jpg", "starry_night.jpg"]
    options = WorkerOptions(str(folder / "out"), checkpoint_every=0)
    (record,) = worker.render_task(engine, [job], options, inputs=_input_bytes([job]))
    assert record["status"] == "done", record.get("error")
    shutil.copyfile(gallery_dir / "content" / "machu_picchu.jpg", job.content)
    # A job rebuilt from a sidecar (nst report) or made by hand has no digests to compare with.
    (record,) = worker.render_task(engine, [replace(job, digests=())], options)
    assert record["status"] == "done", record.get("error")
