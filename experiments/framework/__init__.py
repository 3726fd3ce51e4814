"""What an experiment is and how it runs: the experiment interface, claims, training-run
planning and storage, the runner, the schedule of a main job, the report and the ledger.
Nothing here imports a study; `experiments.registry` lists them."""
