"""The GPU memory planner behind ``scripts/plan_vram.py``, standard library only (start.sh runs
it on the host before any container exists, with the system's python3 and no packages):

- :mod:`vram.settings`: the settings of a .env that memory depends on, read and checked;
- :mod:`vram.model`: the memory model, each engine's weights, KV cache and overhead on its
  card, and whether the plan fits;
- :mod:`vram.profiles`: the shipped profiles (16gb, 24gb, 32gb, dual-16gb, cpu);
- :mod:`vram.calibration`: the model against every published size it can be checked with;
- :mod:`vram.tables`: the parts of .env.example and docs/VRAM-REALITY-CHECK.md written from the
  above (``scripts/generate.py`` writes and checks them);
- :mod:`vram.cli`: the command line (``plan_vram.py check | profile | calibration``).

The facts they count with (architecture, checkpoints, GGUF recipes, allowances), each with its
source, are in ``scripts/vram_facts.py``.
"""
