"""Entry points: every DVC stage and every command, the only modules with main(), and the
process-level start-up tweaks that only a command may make.

May import: every package of pipeline; nothing imports it but pipeline.stages and hydra_plugins.
"""
