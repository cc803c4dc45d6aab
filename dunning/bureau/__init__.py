"""Credit-bureau reporting: the bureau step's records, status codes, Metro 2 and CN files.

- ``records.py``: one account's snapshot per reporting cycle, built from a bureau intent;
- ``status.py``: status codes, payment history, date of first delinquency, CN repayment status;
- ``furnisher.py``: the bureau step's channel adapter (writes the snapshot to the ledger);
- ``metro2_layout.py``/``metro2.py``: the Metro 2 character format, writer and parser;
- ``cn_csv.py``: the CN report CSV, writer and parser;
- ``export.py``: a cycle's file and manifest; ``report.py``: a cycle's counts.

What is reported when, the rules and their sources: docs/bureau.md.
"""
