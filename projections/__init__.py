"""fleetsync's read side: reconcile status and audit/provenance views.

Projections fold the event log into queryable state; they never write domain
events.
"""
