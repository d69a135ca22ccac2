"""The scaled-out topology on one machine (`make topology`) and its fault drill
(`make test-topology`): docs/scaling.md."""
