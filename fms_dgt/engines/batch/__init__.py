"""The OpenAI Batch API as a transport of the ``openai`` engine (``transport: batch``).

Requests are grouped into batch jobs (half the price of the normal API, answered within a
completion window instead of at once); each caller still awaits its own answer, shaped as
the normal API's. The modules:

* ``options``: the ``batch:`` block of an engine (``BatchOptions``);
* ``api``: the HTTP calls (upload a file, create, look up and list jobs, download results);
* ``journal``: the durable record of which requests went into which job, so a run that is
  killed and started again resumes its jobs instead of paying for them twice;
* ``jobs``: the transport itself (collecting requests into jobs, polling, handing answers
  back, resubmitting expired and failed items alone).
"""

from fms_dgt.engines.batch.options import BatchOptions

__all__ = ["BatchOptions"]
