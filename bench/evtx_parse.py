#!/usr/bin/env python3
"""The floor for EVTX: the evtx package parsing every record of FILE to JSON, nothing else.

    python bench/evtx_parse.py FILE

Prints the number of records. Uses the parser's default threads.
"""

import sys

from evtx import PyEvtxParser

if __name__ == "__main__":
    count = 0
    for _ in PyEvtxParser(sys.argv[1]).records_json():
        count += 1
    print(count)
