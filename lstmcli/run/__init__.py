"""Training runs: fitting, the training loop, resume, the run folder's lock, manifest and
tracking, distributed set-up and the checks before a run.
"""
