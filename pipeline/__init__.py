"""Manifests, the plan, workers, outputs and the `nst` command.

Nothing here does tensor math, and nothing but the worker modules (worker.py,
worker_loop.py, cluster_task.py) imports the engine: the parent process never
loads torch, so it can never initialise CUDA before spawning workers.
"""
