import sys

from benchmarks.run import main

sys.exit(1 if any(r["checks"].get("failed") for r in main()["results"]) else 0)
