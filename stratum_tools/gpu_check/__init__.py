"""The GPU check for a lent device (``bash scripts/gpu-check.sh``): :mod:`.run` orchestrates the
steps of :mod:`.steps` within one time budget and writes the report."""
