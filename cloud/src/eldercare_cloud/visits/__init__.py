"""The one notion of a verified visit: the six facts electronic visit verification asks
for (what service, for whom, when, where, by whom, start and end), how each was
verified, and the home's own devices as the verifier."""

from eldercare_cloud.visits.schema import MIGRATIONS
from eldercare_cloud.visits.verify import Evidence, Flag, Verdict, verify

__all__ = ["MIGRATIONS", "Evidence", "Flag", "Verdict", "verify"]
