"""`python -m pipeline.robustness`: the robustness stage (see stage.py)."""

from pipeline.robustness.stage import main

main()
