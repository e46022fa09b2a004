"""MITRE ATT&CK and D3FEND ids for pySigma, from the file mailhunt ships instead of a download.

pySigma 1.x loads this data lazily: the first read of an attribute such as
``sigma.data.mitre_attack.mitre_attack_techniques`` downloads MITRE's STIX
bundle (and D3FEND's ontology) and caches it under the home folder. The tag
validators of ``mailhunt rules check`` and the Elasticsearch backends read
those attributes. mailhunt never downloads anything at run time, so
``use_shipped_mitre_data`` sets the attributes on pySigma's data modules from
``mailhunt/data/mitre.json``; a module attribute that exists is found before
the module's lazy ``__getattr__`` runs, so pySigma neither fetches nor caches.

Where the file comes from and how to regenerate it: ``tools/make_mitre_data.py``
and docs/rules.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from sigma.data import mitre_attack, mitre_d3fend

# Attributes pySigma 1.5 reads; data that the shipped file lacks is empty.
ATTACK_ATTRIBUTES = ("version", "tactics", "techniques", "techniques_tactics_mapping", "intrusion_sets",
                     "software", "datasources", "mitigations")
D3FEND_ATTRIBUTES = ("version", "tactics", "techniques", "artifacts")


@dataclass(frozen=True)
class MitreDataInfo:
    attack_version: str
    d3fend_version: str
    attack_source: str
    d3fend_source: str


@cache
def _shipped() -> dict:
    return json.loads((resources.files("mailhunt") / "data" / "mitre.json").read_text(encoding="utf-8"))


def use_shipped_mitre_data() -> MitreDataInfo:
    """Point pySigma's ATT&CK and D3FEND data at the shipped ids (idempotent)."""
    data = _shipped()
    for module, prefix, section, names in ((mitre_attack, "mitre_attack_", "attack", ATTACK_ATTRIBUTES),
                                           (mitre_d3fend, "mitre_d3fend_", "d3fend", D3FEND_ATTRIBUTES)):
        for name in names:
            default = "unknown" if name == "version" else {}
            setattr(module, prefix + name, data[section].get(name, default))
    return MitreDataInfo(data["attack"]["version"], data["d3fend"]["version"],
                         data["source"]["attack"]["file"], data["source"]["d3fend"]["file"])
