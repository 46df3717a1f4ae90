"""The pure half of the scheduler: plan() and next_batch(). No processes, no torch work."""

from __future__ import annotations

import random

from nst_engine.settings import RenderSettings
from pipeline.jobs import RenderJob
from pipeline.scheduler import can_share_batch, next_batch, plan


def _job(content="cat", style="starry", size=64, iterations=10, variant="", **settings):
    styles = tuple(f"/in/{s}.jpg" for s in style.split("+"))
    job_id = f"{content}-{style}-{size}-{iterations}-{variant}"
    return _make(job_id, f"/in/{content}.jpg", styles,
                 RenderSettings(size=size, iterations=iterations, **settings), variant)


def _make(job_id, content, styles, settings, variant):
    return RenderJob(job_id=job_id, content=content, styles=styles, settings=settings,
                     output_name=f"{job_id}.png", content_label=content, style_label="+".join(styles),
                     variant=variant)


def _ids(jobs):
    return [job.job_id for job in jobs]


# -- plan ----------------------------------------------------------------------------


def test_plan_skips_done_jobs_and_keeps_them_apart():
    jobs = [_job("cat"), _job("dog"), _job("owl")]
    result = plan(jobs, lambda job: job.content == "/in/dog.jpg")
    assert _ids(result.done) == ["dog-starry-64-10-"]
    assert set(_ids(result.todo)) == {"cat-starry-64-10-", "owl-starry-64-10-"}


def test_plan_keeps_a_sweeps_variants_in_the_manifests_order():
    # As strings, "style_weight=10" sorts before "style_weight=2".
    weights = [1, 2, 10, 25]
    jobs = [_job("cat", variant=f"style_weight={w}", style_weight=w) for w in weights]
    result = plan(list(jobs), lambda job: False)
    assert [job.variant for job in result.todo] == [f"style_weight={w}" for w in weights]


def test_plan_with_everything_done_has_nothing_to_do():
    result = plan([_job("cat"), _job("dog")], lambda job: True)
    assert result.todo == () and len(result.done) == 2


def test_plan_groups_by_style_with_the_group_holding_the_largest_job_first():
    jobs = [
        _job("cat", "starry", size=64),
        _job("dog", "cafe", size=256),
        _job("owl", "starry", size=128),
        _job("cat", "cafe", size=32),
    ]
    order = [(job.content, job.settings.size) for job in plan(jobs, lambda job: False).todo]
    # cafe holds the largest job (256), so its group goes first, largest first inside it.
    assert order == [("/in/dog.jpg", 256), ("/in/cat.jpg", 32), ("/in/owl.jpg", 128), ("/in/cat.jpg", 64)]


def test_plan_counts_iterations_as_work_not_only_pixels():
    small_long = _job("cat", "starry", size=64, iterations=1000)
    big_short = _job("dog", "starry", size=128, iterations=10)
    assert _ids(plan([big_short, small_long], lambda job: False).todo) == _ids([small_long, big_short])


def test_plan_is_deterministic_whatever_the_input_order():
    jobs = [
        _job(c, s, size=size)
        for c in ("cat", "dog", "owl")
        for s, size in (("starry", 64), ("cafe", 128), ("wave", 96))
    ]
    expected = _ids(plan(jobs, lambda job: False).todo)
    assert _ids(plan(list(jobs), lambda job: False).todo) == expected
    for seed in range(5):
        shuffled = jobs[:]
        random.Random(seed).shuffle(shuffled)
        assert _ids(plan(shuffled, lambda job: False).todo) == expected


def test_plan_ties_between_equal_groups_keep_manifest_order():
    jobs = [_job("cat", "wave"), _job("cat", "starry"), _job("dog", "wave")]
    assert _ids(plan(jobs, lambda job: False).todo) == [
        "cat-wave-64-10-", "dog-wave-64-10-", "cat-starry-64-10-"
    ]


# -- next_batch -------------------------------------------------------------------------


def test_next_batch_of_nothing_is_empty():
    assert next_batch([], {"/in/starry.jpg"}, batch_cap=8, max_batch_pixels=10**9) == []


def test_next_batch_prefers_a_style_the_worker_already_holds():
    pending = [_job("cat", "starry"), _job("dog", "cafe"), _job("owl", "cafe")]
    batch = next_batch(pending, {"/in/cafe.jpg"}, batch_cap=8, max_batch_pixels=0)
    assert _ids(batch) == ["dog-cafe-64-10-"]
    # Nothing held: the queue's own order decides.
    assert _ids(next_batch(pending, set(), batch_cap=8, max_batch_pixels=0)) == ["cat-starry-64-10-"]


def test_a_blend_counts_as_held_only_when_every_style_is_held():
    pending = [_job("cat", "starry"), _job("dog", "cafe+wave")]
    assert _ids(next_batch(pending, {"/in/cafe.jpg"}, batch_cap=8, max_batch_pixels=0)) == [
        "cat-starry-64-10-"
    ]
    held = {"/in/cafe.jpg", "/in/wave.jpg"}
    assert _ids(next_batch(pending, held, batch_cap=8, max_batch_pixels=0)) == ["dog-cafe+wave-64-10-"]


def test_zero_max_batch_pixels_means_one_image_at_a_time():
    pending = [_job("cat", "starry", variant="a"), _job("cat", "cafe", variant="b")]
    assert len(next_batch(pending, set(), batch_cap=8, max_batch_pixels=0)) == 1


def test_batches_only_the_same_content_with_the_same_shared_settings():
    first = _job("cat", "starry")
    same = _job("cat", "cafe")
    per_image_differs = _job("cat", "wave", style_weight=50.0)  # per image: still batchable
    other_content = _job("dog", "starry")
    other_signature = _job("cat", "cafe", iterations=20)  # shared setting differs
    pending = [first, other_content, same, other_signature, per_image_differs]
    batch = next_batch(pending, set(), batch_cap=8, max_batch_pixels=10**9)
    assert _ids(batch) == _ids([first, same, per_image_differs])
    assert all(can_share_batch(first, job) for job in batch)
    assert not can_share_batch(first, other_content)
    assert not can_share_batch(first, other_signature)


def test_batch_respects_the_cap_and_the_memory_budget():
    pending = [_job("cat", f"s{i}", size=64) for i in range(6)]
    assert len(next_batch(pending, set(), batch_cap=4, max_batch_pixels=10**9)) == 4
    assert len(next_batch(pending, set(), batch_cap=8, max_batch_pixels=64 * 64 * 3)) == 3
    # A budget below one image still renders one: a batch is never empty.
    assert len(next_batch(pending, set(), batch_cap=8, max_batch_pixels=100)) == 1


def _hand_out(pending, workers):
    """Every worker asks once, in turn, as at the start of a run; -> batch sizes."""
    pending, sizes = list(pending), []
    for _ in range(workers):
        batch = next_batch(pending, set(), batch_cap=8, max_batch_pixels=10**9, workers=workers)
        for job in batch:
            pending.remove(job)
        sizes.append(len(batch))
    return sizes, pending


def test_every_gpu_gets_work_when_there_is_enough_for_all():
    # The sample gallery's shape: 21 jobs over 4 contents (8, 4, 5, 4 jobs).
    counts = {"cat": 8, "dog": 4, "owl": 5, "fox": 4}
    pending = [_job(content, f"s{i}", size=64) for content, n in counts.items() for i in range(n)]
    sizes, left = _hand_out(pending, workers=8)
    assert all(size >= 1 for size in sizes) and max(sizes) == 3  # ceil(21 / 8) at most
    assert len(left) == 21 - sum(sizes)
    # One GPU batches as much as the cap allows, as before.
    assert _hand_out(pending, workers=1)[0] == [8]


def test_fewer_jobs_than_workers_go_out_one_each():
    pending = [_job("cat", f"s{i}", size=64) for i in range(3)]
    assert _hand_out(pending, workers=4) == ([1, 1, 1, 0], [])
