"""Importing another system's exports (issue 26, decision 0021): one core for the ``pipelines import`` tool and the
directory's import job.

- ``mapping``: a source's mapping file (``mappings/<source>.toml``, or the user's own for a generic CSV/XLSX).
- ``reader``: the file streamed, CSV (delimiter and encoding sniffed) or XLSX (read-only), one record at a time.
- ``cells``: a cell read as its column's type (dates, numbers, money, enums, owners, references), formula injection
  and over-long cells refused.
- ``rows``: a record made into the batch rows the services' ``POST /imports/batches`` take, or its bad cells.
- ``runner``: batches per service in dependency order, sent with retries, a checkpoint to resume after a kill, the
  report of bad and refused rows, the counts.

Nothing here knows a service's insides: a row is the contract's JSON (docs/decisions/0021-import-and-time.md).
"""
