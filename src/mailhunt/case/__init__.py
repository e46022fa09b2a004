"""The case after the finding: evidence preserved with its chain of custody, and the checks on it."""
