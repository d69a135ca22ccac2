"""The chaos suite (docs/reliability.md, "Chaos"): seeded, randomized faults against a real stack,
then the lab's invariant checker (apps/lab/checks.py). `make chaos SEED=1 RUNS=200`;
docs/reliability.md says what is injected and checked."""
