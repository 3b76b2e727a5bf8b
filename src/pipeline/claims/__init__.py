"""The report's claims as data, each with its verdict rule, the results of the preset sweeps they
read, and the rendering of the report.

May import: every package below it; not pipeline.stages.
"""
