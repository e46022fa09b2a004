"""The case after the finding: what a hunt writes beside the findings for the investigation that follows."""
