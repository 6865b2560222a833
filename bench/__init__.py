"""`make bench`: stage-by-stage timings with each stage's floor or peer measured in the same run."""
