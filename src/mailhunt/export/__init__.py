"""Export mailhunt's Sigma rules (or anyone's) to the query languages of the SIEMs people run.

``platforms/*.yml`` say, per platform and per mailhunt dataset, which field a
platform stores each event-model column in; ``mapping.py`` turns that into a
pySigma processing pipeline per rule; ``backends.py`` holds the few additions
the stock pySigma backends need (computed parameter fields, EQL field-exists);
``exporter.py`` converts rule by rule and writes one file per rule plus an
index that lists every rule, converted or not, with the reason.
"""
