"""The claims of the report as data, each with its verdict rule, and the sweep results they read."""
