"""Reconciliation against relays: refresh what the relays hold, plan, and apply
publish commands idempotently (seal once, store, send, confirm by read-back).

* :mod:`adapters.sync.engine` - the :class:`Reconciler`: the order of the steps;
* :mod:`adapters.sync.heads` - reading agents' heads from the relays;
* :mod:`adapters.sync.sealing` - sealing (or taking from the log) what is sent;
* :mod:`adapters.sync.confirm` - reading back and recording the verdict
  (the verdict itself is :func:`domain.verdict.judge`);
* :mod:`adapters.sync.gateway` - the reconciler's gateway to the relays;
* :mod:`adapters.sync.report` - what an apply reports.
"""
