"""Where the shared public samples live: ../shared/corpus beside the repository."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PUBLIC = SHARED / "corpus" / "public"
SIGMAHQ = SHARED / "corpus" / "sigmahq"
EXAMPLES = REPO / "examples"
